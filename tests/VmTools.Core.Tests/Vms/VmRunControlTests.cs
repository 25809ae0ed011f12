using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Restart, suspend and resume of real qemu VMs (TCG) booting the busybox test guest, and how reconcile treats a paused VM, however it was paused.</summary>
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

    /// <summary>
    /// Another QMP client, not VmTools: greeting, capabilities, then <paramref name="command"/> written raw.
    /// Returns qemu's answer line, so a failure shows what qemu said.
    /// </summary>
    private static async Task<string> RawQmp(string socketPath, string command)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), Ct);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        async Task<string> Answer()
        {
            while (true)
            {
                var line = await reader.ReadLineAsync(Ct) ?? throw new IOException("qemu closed the QMP socket");
                if (!line.Contains("\"event\"", StringComparison.Ordinal)) return line;
            }
        }

        Assert.Contains("\"QMP\"", await Answer());
        await stream.WriteAsync(Encoding.UTF8.GetBytes("{\"execute\":\"qmp_capabilities\"}\n"), Ct);
        Assert.Contains("\"return\"", await Answer());
        await stream.WriteAsync(Encoding.UTF8.GetBytes(command + "\n"), Ct);
        var answer = await Answer();
        Assert.Contains("\"return\"", answer);
        return answer;
    }

    private static async Task<VmReconcileAction> ReconcileOne(VmTestBed bed, string name, bool apply = true)
        => Assert.Single(await new Reconciler(bed.Db, bed.Paths).RunAsync(apply, removeOrphans: false, Ct), a => a.Name == name);

    [Fact]
    public async Task PausedAndResumedOutsideVmTools_ReconcileRecordsWhatQemuSays()
    {
        using var bed = new VmTestBed();
        var vm = await bed.WaitReadyAsync(await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "puppet")));
        Assert.Equal(VmState.Running, bed.Lifecycle.Store.Get("puppet").State);

        await RawQmp(vm.QmpSocketPath, "{\"execute\":\"stop\"}");
        Assert.Equal("paused", await QemuStatus(vm));
        Assert.Equal(VmState.Running, bed.Lifecycle.Store.Get("puppet").State);

        // The plan already says what qemu says, and changes nothing.
        var plan = await ReconcileOne(bed, "puppet", apply: false);
        Assert.Equal(VmState.Paused, plan.StateAfter);
        Assert.Equal(VmState.Running, bed.Lifecycle.Store.Get("puppet").State);

        var paused = await ReconcileOne(bed, "puppet");
        Assert.Equal(VmReconcileActionKind.Keep, paused.Action);
        Assert.Equal((VmState.Running, VmState.Paused), (paused.StateBefore!.Value, paused.StateAfter!.Value));
        Assert.Contains("QMP status paused", paused.Detail);
        Assert.Null(paused.Warning);
        Assert.Equal(VmState.Paused, bed.Lifecycle.Store.Get("puppet").State);

        await RawQmp(vm.QmpSocketPath, "{\"execute\":\"cont\"}");
        var running = await ReconcileOne(bed, "puppet");
        Assert.Equal((VmState.Paused, VmState.Running), (running.StateBefore!.Value, running.StateAfter!.Value));
        Assert.Null(running.Warning);
        Assert.Equal(VmState.Running, bed.Lifecycle.Store.Get("puppet").State);
        Assert.True(bed.Lifecycle.Handles("puppet").Alive);
    }

    [Fact]
    public async Task QmpSocketThatNeverAnswers_OrHasNoListener_KeepsTheRecord_AndReconcileReturnsWithinTheTimeout()
    {
        using var bed = new VmTestBed();
        var vm = await bed.WaitReadyAsync(await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "mute")));
        // qemu keeps listening on its socket wherever the file goes; ours takes its place and never says a word.
        var real = vm.QmpSocketPath + ".real";
        File.Move(vm.QmpSocketPath, real);
        var slack = TimeSpan.FromSeconds(3);
        using (var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            silent.Bind(new UnixDomainSocketEndPoint(vm.QmpSocketPath));
            silent.Listen(4);

            var clock = Stopwatch.StartNew();
            var kept = await ReconcileOne(bed, "mute");
            clock.Stop();
            Assert.True(clock.Elapsed < Reconciler.QmpStatusTimeout + slack, $"reconcile took {clock.Elapsed} against a silent QMP socket");
            Assert.True(clock.Elapsed >= Reconciler.QmpStatusTimeout - TimeSpan.FromMilliseconds(100), $"reconcile took only {clock.Elapsed}: it did not wait for the silent socket at all");
            Assert.Equal(VmReconcileActionKind.Keep, kept.Action);
            Assert.Equal((VmState.Running, VmState.Running), (kept.StateBefore!.Value, kept.StateAfter!.Value));
            Assert.Contains("did not answer", kept.Warning);
            Assert.Equal(VmState.Running, bed.Lifecycle.Store.Get("mute").State);
        }

        // A socket file with no listener: connecting is refused at once. A paused record stays paused.
        // (.NET unlinks a bound socket's file when it closes, so the file is bound elsewhere and moved here.)
        Assert.False(File.Exists(vm.QmpSocketPath));
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            stale.Bind(new UnixDomainSocketEndPoint(vm.QmpSocketPath + ".stale"));
            File.Move(vm.QmpSocketPath + ".stale", vm.QmpSocketPath);
        }

        Assert.True(File.Exists(vm.QmpSocketPath));
        bed.Lifecycle.Store.SetState(bed.Lifecycle.Store.Get("mute"), VmState.Paused, null);
        var refused = Stopwatch.StartNew();
        var stillPaused = await ReconcileOne(bed, "mute");
        refused.Stop();
        Assert.True(refused.Elapsed < Reconciler.QmpStatusTimeout + slack, $"reconcile took {refused.Elapsed} against a socket without a listener");
        Assert.Equal((VmState.Paused, VmState.Paused), (stillPaused.StateBefore!.Value, stillPaused.StateAfter!.Value));
        Assert.Contains("did not answer", stillPaused.Warning);
        Assert.Equal(VmState.Paused, bed.Lifecycle.Store.Get("mute").State);
        Assert.True(bed.Lifecycle.Handles("mute").Alive, "a silent QMP socket never makes reconcile tear down a live VM");

        // qemu's own socket back: it says running, and the record follows.
        File.Delete(vm.QmpSocketPath);
        File.Move(real, vm.QmpSocketPath);
        var corrected = await ReconcileOne(bed, "mute");
        Assert.Equal((VmState.Paused, VmState.Running), (corrected.StateBefore!.Value, corrected.StateAfter!.Value));
        Assert.Null(corrected.Warning);
    }

    [Theory]
    [InlineData("running", VmState.Running, false)]
    [InlineData("paused", VmState.Paused, false)]
    [InlineData("io-error", VmState.Paused, true)]
    [InlineData("internal-error", VmState.Paused, true)]
    [InlineData("suspended", VmState.Paused, true)]
    [InlineData("prelaunch", VmState.Paused, true)]
    [InlineData("shutdown", VmState.Paused, true)]
    public void QemuStatus_MapsToTheRecord_AndAnythingButRunningOrPausedIsUnusual(string status, VmState state, bool unusual)
    {
        var s = new QemuRunStatus(status);
        Assert.Equal((state, unusual), (s.State, s.Unusual));
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
