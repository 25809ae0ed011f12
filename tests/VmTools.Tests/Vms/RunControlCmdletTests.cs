using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>Suspend-, Resume- and Restart-FlightVm in a real PowerShell engine: -WhatIf, -PassThru, states and ErrorIds.</summary>
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
}
