using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Following the console of real qemu VMs (TCG) booting the busybox test guest.</summary>
[Collection("qemu-vms")]
public sealed class ConsoleFollowerQemuTests
{
    private static readonly TimeSpan ClockSlack = TimeSpan.FromMilliseconds(50);

    [Fact]
    public async Task Follow_RunningVm_StreamsUntilThePatternMatches_ThenEndsAtTheTimeoutOrOnCancellation()
    {
        using var bed = new VmTestBed();
        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "talker"));
        var lines = new List<string>();
        var end = await ConsoleFollower.ReadAsync(vm, new ConsoleReadRequest { Follow = true, Until = FlightVmGuest.ReadyMarker, Timeout = TimeSpan.FromSeconds(120) }, lines.Add, TestContext.Current.CancellationToken);
        Assert.Equal(ConsoleReadEnd.UntilMatched, end);
        Assert.Contains(FlightVmGuest.ReadyMarker, lines[^1]);
        var logged = File.ReadAllText(vm.ConsoleLogPath).Replace("\r", string.Empty).Split('\n');
        var markerAt = Array.FindIndex(logged, l => l.Contains(FlightVmGuest.ReadyMarker));
        Assert.Equal(logged[..(markerAt + 1)], lines); // everything before the marker as well, without the serial line's '\r'

        // The guest now idles: a timeout ends a plain follow quietly, and a follow for a line that never comes with an error.
        var started = DateTime.UtcNow;
        var quiet = await ConsoleFollower.ReadAsync(vm, new ConsoleReadRequest { Follow = true, Tail = 0, Timeout = TimeSpan.FromSeconds(1) }, _ => { }, TestContext.Current.CancellationToken);
        Assert.Equal(ConsoleReadEnd.TimedOut, quiet);
        // The timeout runs on the runtime's millisecond tick, the wall clock here on another: allow the difference.
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(1) - ClockSlack, $"returned after {DateTime.UtcNow - started}");
        var e = await Assert.ThrowsAsync<VmToolsException>(() => ConsoleFollower.ReadAsync(vm, new ConsoleReadRequest { Follow = true, Until = "never-printed", Timeout = TimeSpan.FromSeconds(1) }, _ => { }, TestContext.Current.CancellationToken));
        Assert.Equal("VmConsoleUntilNotSeen", e.ErrorId);
        Assert.Contains("within 1 s", e.Message);

        // Ctrl+C: a follow without limits ends by cancellation alone.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ConsoleFollower.ReadAsync(vm, new ConsoleReadRequest { Follow = true, Tail = 0 }, _ => { }, cts.Token));
        Assert.True(bed.Lifecycle.Handles("talker").Alive, "reading the console must not disturb the VM");
    }

    [Fact]
    public async Task Follow_EndsWhenQemuExits_AfterWritingWhatItPrinted()
    {
        using var bed = new VmTestBed();
        // The guest powers off at once (busybox poweroff as init), so qemu exits while the follower runs.
        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "quitter") with { KernelArgs = "console=ttyS0 rdinit=/sbin/poweroff -- -f" });
        var lines = new List<string>();
        var started = DateTime.UtcNow;
        var end = await ConsoleFollower.ReadAsync(vm, new ConsoleReadRequest { Follow = true }, lines.Add, TestContext.Current.CancellationToken);
        Assert.Equal(ConsoleReadEnd.QemuExited, end);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(90), "the follow did not notice that qemu exited");
        Assert.NotEmpty(lines);
        Assert.Equal(File.ReadAllText(vm.ConsoleLogPath).Replace("\r", string.Empty).TrimEnd('\n').Split('\n'), lines);
    }
}
