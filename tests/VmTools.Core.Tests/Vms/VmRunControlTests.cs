using System.Text.RegularExpressions;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Restart, suspend and resume of real qemu VMs (TCG) booting the busybox test guest, and how reconcile treats a paused VM.</summary>
[Collection("qemu-vms")]
public sealed class VmRunControlTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<string> QemuStatus(FlightVm vm)
        => (await QmpClient.ExecuteAsync(vm.QmpSocketPath, "query-status", TimeSpan.FromSeconds(10), Ct)).GetProperty("status").GetString()!;

    [Fact]
    public async Task Suspend_HaltsTheGuest_RecordsPaused_ReconcileKeepsItPaused_AndResumeRunsItAgain()
    {
        using var bed = new VmTestBed();
        var vm = await bed.WaitReadyAsync(await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "napper")));

        var paused = await bed.Lifecycle.SuspendAsync("napper", Ct);
        Assert.Equal(VmState.Paused, paused.State);
        Assert.Equal(VmState.Paused, bed.Lifecycle.Store.Get("napper").State);
        Assert.Equal("paused", await QemuStatus(vm));
        Assert.True(bed.Lifecycle.Handles("napper").Alive, "a paused VM keeps its qemu");

        var keep = Assert.Single(await new Reconciler(bed.Db, bed.Paths).RunAsync(apply: true, removeOrphans: false, Ct), a => a.Name == "napper");
        Assert.Equal(VmReconcileActionKind.Keep, keep.Action);
        Assert.Equal(VmState.Paused, keep.StateAfter);
        Assert.Equal(VmState.Paused, bed.Lifecycle.Store.Get("napper").State);

        var resumed = await bed.Lifecycle.ResumeAsync("napper", Ct);
        Assert.Equal(VmState.Running, resumed.State);
        Assert.Equal("running", await QemuStatus(vm));

        // A paused VM stops gracefully too: stop lets the guest run to see the power button.
        await bed.Lifecycle.SuspendAsync("napper", Ct);
        var stopped = await bed.Lifecycle.StopAsync("napper", TimeSpan.FromSeconds(60), force: false, null, Ct);
        Assert.Equal(VmState.Stopped, stopped.State);
        var console = File.ReadAllText(vm.ConsoleLogPath);
        // it went down through ACPI, not SIGKILL; on failure the console's end shows what the guest last did
        Assert.True(console.Contains("POWER-BUTTON", StringComparison.Ordinal), "no POWER-BUTTON on the console, which ends: " + console[Math.Max(0, console.Length - 1500)..]);

        var e = await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.ResumeAsync("napper", Ct));
        Assert.Equal("VmNotRunning", e.ErrorId);
        Assert.Equal(VmState.Stopped, bed.Lifecycle.Store.Get("napper").State);
    }

    [Fact]
    public async Task Restart_RebootsTheGuestInTheSameQemu()
    {
        using var bed = new VmTestBed();
        var vm = await bed.WaitReadyAsync(await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "bouncer")));
        var pid = bed.Lifecycle.Handles("bouncer").Pid;

        var restarted = await bed.Lifecycle.RestartAsync("bouncer", Ct);
        Assert.Equal(VmState.Running, restarted.State);
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (Regex.Matches(File.ReadAllText(vm.ConsoleLogPath), FlightVmGuest.ReadyMarker).Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(200, Ct);
        Assert.Equal(2, Regex.Matches(File.ReadAllText(vm.ConsoleLogPath), FlightVmGuest.ReadyMarker).Count);
        Assert.Equal(pid, bed.Lifecycle.Handles("bouncer").Pid);

        await bed.Lifecycle.StopAsync("bouncer", TimeSpan.Zero, force: true, null, Ct);
        Assert.Equal("VmNotRunning", (await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.RestartAsync("bouncer", Ct))).ErrorId);
        Assert.Equal("VmNotFound", (await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.SuspendAsync("nobody", Ct))).ErrorId);
    }
}
