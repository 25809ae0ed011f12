using System.Diagnostics;
using System.Net.Sockets;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>Suspend-, Resume- and Restart-FlightVm in a real PowerShell engine: -WhatIf, -PassThru, states and ErrorIds; and reconcile when qemu's QMP socket is silent.</summary>
[Collection("qemu-vms")]
public sealed class RunControlCmdletTests
{
    [Fact]
    public void SuspendResumeRestart_ChangeTheRecordedState_WhatIfChangesNothing_AndAStoppedVmIsVmNotRunning()
    {
        using var s = new VmSession();
        s.Ps.Invoke("param($p, $m) $null = Start-FlightVm @p -Wait -ReadyPattern $m -Timeout 120", s.GuestParameters("rc"), FlightVmGuest.ReadyMarker);

        Assert.Empty(s.Ps.Invoke("Suspend-FlightVm rc -WhatIf -PassThru"));
        Assert.Equal("Running", s.Ps.Invoke("(Get-FlightVm rc).State").Single().ToString());
        Assert.Equal("Paused", s.Ps.Invoke("(Suspend-FlightVm r* -PassThru).State").Single().ToString());
        Assert.Equal("rc", s.Ps.Invoke("(Get-FlightVm -State Paused).Name").Single().ToString());
        Assert.True((bool)s.Ps.Invoke("(Get-VmHandles rc).Alive").Single().BaseObject);
        Assert.Equal("Running", s.Ps.Invoke("(Get-FlightVm -State Paused | Resume-FlightVm -PassThru).State").Single().ToString());

        Assert.Equal("Running", s.Ps.Invoke("(Restart-FlightVm rc -PassThru).State").Single().ToString());
        // The reset guest boots again and prints its marker a second time.
        var markers = s.Ps.Invoke("""
            param($m)
            $deadline = (Get-Date).AddSeconds(120)
            while (@(Get-FlightVmConsole rc | Select-String $m).Count -lt 2 -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
            @(Get-FlightVmConsole rc | Select-String $m).Count
            """, FlightVmGuest.ReadyMarker);
        Assert.Equal(2, (int)markers.Single().BaseObject);

        s.Ps.Invoke("Stop-FlightVm rc -Force");
        Assert.Equal("VmNotRunning,VmTools.Commands.ResumeFlightVmCommand", s.ExpectErrorOf("Resume-FlightVm rc"));
        Assert.Equal("VmNotRunning,VmTools.Commands.RestartFlightVmCommand", s.ExpectErrorOf("Restart-FlightVm rc"));
        Assert.Equal("VmNotFound,VmTools.Commands.SuspendFlightVmCommand", s.ExpectErrorOf("Suspend-FlightVm nosuch"));
    }

    [Fact]
    public void Reconcile_WithASilentQmpSocket_KeepsTheRecord_WritesAWarning_AndReturnsWithinTheTimeout()
    {
        using var s = new VmSession();
        s.Ps.Invoke("param($p, $m) $null = Start-FlightVm @p -Wait -ReadyPattern $m -Timeout 120", s.GuestParameters("mute"), FlightVmGuest.ReadyMarker);
        var socketPath = s.Ps.Invoke("(Get-FlightVm mute).QmpSocketPath").Single().ToString()!;
        File.Move(socketPath, socketPath + ".real");
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        silent.Bind(new UnixDomainSocketEndPoint(socketPath));
        silent.Listen(4);

        var clock = Stopwatch.StartNew();
        var r = s.Ps.Run("Invoke-VmReconcile | Where-Object Name -eq mute");
        clock.Stop();
        Assert.True(clock.Elapsed < Reconciler.QmpStatusTimeout + TimeSpan.FromSeconds(3), $"reconcile took {clock.Elapsed}");
        Assert.False(r.HadErrors, string.Join('\n', r.Errors));
        var keep = (VmReconcileAction)r.Output.Single().BaseObject;
        Assert.Equal((VmReconcileActionKind.Keep, VmState.Running), (keep.Action, keep.StateAfter!.Value));
        Assert.Contains(r.Warnings, w => w.StartsWith("mute: qemu is alive but its QMP socket did not answer", StringComparison.Ordinal));
        Assert.Equal("Running", s.Ps.Invoke("(Get-FlightVm mute).State").Single().ToString());
        Assert.Contains("QMP did not answer", s.Ps.Invoke("param($a) $a | Out-String -Width 400", keep).Single().ToString());
    }
}
