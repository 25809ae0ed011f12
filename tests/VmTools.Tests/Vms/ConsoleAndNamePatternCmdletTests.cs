using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>Get-FlightVmConsole, wildcard -Name on the VM cmdlets and Remove-FlightVm -PassThru, in a real PowerShell engine.</summary>
[Collection("qemu-vms")]
public sealed class ConsoleAndNamePatternCmdletTests
{
    [Fact]
    public void WildcardNames_SelectTheMatchingVms_APatternMatchingNoneIsSilent_ALiteralIsVmNotFound_AndTheConsoleFollowsUntilAMatch()
    {
        using var s = new VmSession();
        s.Ps.Invoke("param($p) $null = Start-FlightVm @p -Count 2", s.GuestParameters("wc"));
        s.Ps.Invoke("param($p) $null = Start-FlightVm @p", s.GuestParameters("other"));
        var ready = s.Ps.Invoke("param($m) Wait-FlightVm wc-* -ReadyPattern $m -Timeout 180", FlightVmGuest.ReadyMarker);
        Assert.Equal(new[] { "wc-1", "wc-2" }, ready.Select(v => v.Properties["Name"].Value.ToString()).ToArray());

        // -Until: strings, ending with the first matching line.
        var console = s.Ps.Invoke("param($m) Get-FlightVmConsole wc-1 -Until $m -Timeout 60", FlightVmGuest.ReadyMarker);
        Assert.All(console, l => Assert.IsType<string>(l.BaseObject));
        Assert.Contains(FlightVmGuest.ReadyMarker, console[^1].BaseObject.ToString());
        var whole = s.Ps.Invoke("Get-FlightVmConsole wc-1");
        Assert.True(whole.Count >= 2, "the guest writes more than its marker");
        Assert.Equal(whole[^1].BaseObject, s.Ps.Invoke("Get-FlightVmConsole wc-1 -Tail 1").Single().BaseObject);

        // Ctrl+C ends a follow that has no other end.
        var (stopped, followed) = s.Ps.RunAndStopOnOutput("Get-FlightVmConsole other -Wait", o => o.BaseObject.ToString()!.Contains(FlightVmGuest.ReadyMarker));
        Assert.True(stopped);
        Assert.NotEmpty(followed);

        Assert.Empty(s.Ps.Invoke("Get-FlightVm nomatch-*; Get-VmHandles nomatch-*; Stop-FlightVm nomatch-*; Get-FlightVmConsole nomatch-*"));
        Assert.Equal("VmNotFound,VmTools.Commands.StopFlightVmCommand", s.ExpectErrorOf("Stop-FlightVm nosuch"));
        Assert.Equal("VmNotFound,VmTools.Commands.GetFlightVmConsoleCommand", s.ExpectErrorOf("Get-FlightVmConsole nosuch"));
        Assert.Equal("VmNotFound,VmTools.Commands.GetVmHandlesCommand", s.ExpectErrorOf("Get-VmHandles nosuch"));
        Assert.Equal(2, s.Ps.Invoke("Get-VmHandles wc-* | Where-Object Alive").Count);

        var stoppedVms = s.Ps.Invoke("Stop-FlightVm wc-* -Timeout 60 -PassThru");
        Assert.Equal(new[] { "Stopped", "Stopped" }, stoppedVms.Select(v => v.Properties["State"].Value.ToString()).ToArray());
        Assert.True((bool)s.Ps.Invoke("(Get-VmHandles other).Alive").Single().BaseObject, "the pattern must not reach other VMs");

        // A stopped VM keeps its console; following it returns at once since qemu is gone.
        var afterStop = s.Ps.Invoke("Get-FlightVmConsole wc-2 -Wait");
        Assert.Contains(afterStop, l => l.BaseObject.ToString()!.Contains("POWER-BUTTON"));
        Assert.Equal("VmConsoleUntilNotSeen,VmTools.Commands.GetFlightVmConsoleCommand", s.ExpectErrorOf("Get-FlightVmConsole wc-2 -Until never-printed"));

        var removed = s.Ps.Invoke("Remove-FlightVm WC-* -PassThru"); // patterns ignore case, as PowerShell's do
        Assert.Equal(new[] { "wc-1", "wc-2" }, removed.Select(v => v.Properties["Name"].Value.ToString()).ToArray());
        Assert.Equal("VmTools.Core.Vms.FlightVm", removed[0].BaseObject.GetType().FullName);
        Assert.Empty(s.Ps.Invoke("Remove-FlightVm wc-*"));
        Assert.Equal(new[] { "other" }, s.Ps.Invoke("(Get-FlightVm).Name").Select(o => o.ToString()).ToArray());
        s.Ps.Invoke("Remove-FlightVm other -Force");
    }
}
