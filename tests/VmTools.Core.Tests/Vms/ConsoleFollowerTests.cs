using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Reading and following a VM's serial console log: stopped VMs from their record alone, live ones under real qemu.</summary>
public sealed class ConsoleFollowerTests
{
    private static FlightVm StoppedVm(TempDirectory dir, string? console)
    {
        var log = dir.Combine("console.log");
        if (console is not null) File.WriteAllText(log, console);
        return new FlightVm
        {
            Name = "quiet", Id = "q1", State = VmState.Stopped, ImagePath = dir.Combine("base.qcow2"), DiskMode = VmDiskMode.Overlay,
            OverlayPath = dir.Combine("overlay.qcow2"), Directory = dir.Path, ConsoleLogPath = log, QmpSocketPath = dir.Combine("qmp.sock"),
            Network = VmNetworkMode.User, MacAddress = "52:54:00:00:00:01", MemoryMB = 96, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    private static async Task<(List<string> Lines, ConsoleReadEnd End)> Read(FlightVm vm, ConsoleReadRequest request, CancellationToken? ct = null)
    {
        var lines = new List<string>();
        var end = await ConsoleFollower.ReadAsync(vm, request, lines.Add, ct ?? TestContext.Current.CancellationToken);
        return (lines, end);
    }

    [Fact]
    public async Task Read_StoppedVm_WritesEveryLineWithoutCarriageReturns_IncludingAnUnterminatedLastLine()
    {
        using var dir = new TempDirectory("vmtools-console");
        var vm = StoppedVm(dir, "boot\r\nkernel ok\r\n\r\nlogin: ");
        var (lines, end) = await Read(vm, new ConsoleReadRequest());
        Assert.Equal(new[] { "boot", "kernel ok", string.Empty, "login: " }, lines);
        Assert.Equal(ConsoleReadEnd.EndOfLog, end);
    }

    [Fact]
    public async Task Read_WithTail_WritesOnlyTheLastLines_AndTailZeroWritesNothing()
    {
        using var dir = new TempDirectory("vmtools-console");
        var vm = StoppedVm(dir, string.Concat(Enumerable.Range(1, 100).Select(i => $"line {i}\n")));
        Assert.Equal(new[] { "line 98", "line 99", "line 100" }, (await Read(vm, new ConsoleReadRequest { Tail = 3 })).Lines);
        Assert.Empty((await Read(vm, new ConsoleReadRequest { Tail = 0 })).Lines);
        Assert.Equal(100, (await Read(vm, new ConsoleReadRequest { Tail = 500 })).Lines.Count);
    }

    [Fact]
    public async Task Read_WithUntil_StopsAfterTheFirstMatchingLine()
    {
        using var dir = new TempDirectory("vmtools-console");
        var vm = StoppedVm(dir, "a\nREADY one\nb\nREADY two\n");
        var (lines, end) = await Read(vm, new ConsoleReadRequest { Until = "^READY" });
        Assert.Equal(new[] { "a", "READY one" }, lines);
        Assert.Equal(ConsoleReadEnd.UntilMatched, end);
    }

    [Fact]
    public async Task Follow_StoppedVm_ReturnsAtOnceAsQemuExited_AndAnUntilNeverSeenIsAnError()
    {
        using var dir = new TempDirectory("vmtools-console");
        var vm = StoppedVm(dir, "only line\npartial");
        var started = DateTime.UtcNow;
        var (lines, end) = await Read(vm, new ConsoleReadRequest { Follow = true });
        Assert.Equal(new[] { "only line", "partial" }, lines);
        Assert.Equal(ConsoleReadEnd.QemuExited, end);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), "following a stopped VM should not wait");

        var seen = new List<string>();
        var e = await Assert.ThrowsAsync<VmToolsException>(() => ConsoleFollower.ReadAsync(vm, new ConsoleReadRequest { Follow = true, Until = "never" }, seen.Add, TestContext.Current.CancellationToken));
        Assert.Equal("VmConsoleUntilNotSeen", e.ErrorId);
        Assert.Contains("before qemu exited", e.Message);
        Assert.Equal(2, seen.Count); // the lines read are still written
    }

    [Fact]
    public async Task Read_WithoutALog_WritesNothing_AndBadArgumentsHaveTheirOwnErrorIds()
    {
        using var dir = new TempDirectory("vmtools-console");
        var vm = StoppedVm(dir, null);
        Assert.Empty((await Read(vm, new ConsoleReadRequest { Follow = true })).Lines);
        Assert.Equal("VmConsolePatternInvalid", (await Assert.ThrowsAsync<VmToolsException>(() => Read(vm, new ConsoleReadRequest { Until = "([" }))).ErrorId);
        Assert.Equal("VmConsoleTailInvalid", (await Assert.ThrowsAsync<VmToolsException>(() => Read(vm, new ConsoleReadRequest { Tail = -1 }))).ErrorId);
    }
}
