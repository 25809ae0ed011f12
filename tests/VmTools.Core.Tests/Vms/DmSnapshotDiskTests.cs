using VmTools.Core.Host;
using VmTools.Core.Tests.Host;
using VmTools.Core.Vms;

namespace VmTools.Core.Tests.Vms;

/// <summary>
/// The dm-snapshot path through a scripted runner: this kernel has no device-mapper driver. The real
/// path runs in DmSnapshotRealTests wherever /dev/mapper/control works.
/// </summary>
public sealed class DmSnapshotDiskTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ScriptedRunner Runner(string? failAt = null, string? failDetach = null) => new ScriptedRunner()
        .On(c => Key(c) == failAt, c => new CommandResult(c, 1, "", $"{c.FileName}: scripted failure"))
        .On(c => Key(c) == failDetach, c => new CommandResult(c, 1, "", $"{c.FileName}: detach failed: Device or resource busy"))
        .On(c => c.FileName == "losetup" && c.Arguments.Contains("--read-only"), c => new CommandResult(c, 0, "/dev/loop7\n", ""))
        .On(c => c.FileName == "losetup" && c.Arguments[0] == "-f", c => new CommandResult(c, 0, "/dev/loop8\n", ""))
        .On(c => c.FileName == "blockdev", c => new CommandResult(c, 0, "2097152\n", ""))
        .On(c => c.FileName == "dmsetup", c => new CommandResult(c, 0, "", ""))
        .On(c => c.FileName == "losetup" && c.Arguments[0] == "-d", c => new CommandResult(c, 0, "", ""));

    /// <summary>Names each step so a test can make exactly that one fail.</summary>
    private static string Key(CommandSpec c) => c.FileName switch
    {
        "losetup" when c.Arguments.Contains("--read-only") => "attach-base",
        "losetup" when c.Arguments[0] == "-f" => "attach-cow",
        "losetup" => "detach " + c.Arguments[1],
        "blockdev" => "getsz",
        "dmsetup" => c.Arguments[0],
        _ => c.FileName,
    };

    private static string[] Argv(ScriptedRunner r) => r.Calls.Select(c => c.ToString()).ToArray();

    [Fact]
    public async Task Attach_RunsTheExactCommands_AndReturnsTheHandles()
    {
        var runner = Runner();
        var h = await DmSnapshotDisk.AttachAsync(runner, "/images/base.raw", "/vms/x/cow.img", "vmtools-abc", Ct);
        Assert.Equal(new[]
        {
            "losetup -f --show --read-only /images/base.raw",
            "losetup -f --show /vms/x/cow.img",
            "blockdev --getsz /dev/loop7",
            "dmsetup create vmtools-abc --table '0 2097152 snapshot /dev/loop7 /dev/loop8 P 8'",
        }, Argv(runner));
        Assert.Equal(new[] { "create", "vmtools-abc", "--table", "0 2097152 snapshot /dev/loop7 /dev/loop8 P 8" }, runner.Calls[3].Arguments);
        Assert.Equal(("/dev/loop7", "/dev/loop8", "vmtools-abc", "/dev/mapper/vmtools-abc"), (h.BaseLoop, h.CowLoop, h.DmName, h.DmDevice));
    }

    [Theory]
    [InlineData("attach-base", new string[0])]
    [InlineData("attach-cow", new[] { "losetup -d /dev/loop7" })]
    [InlineData("getsz", new[] { "losetup -d /dev/loop8", "losetup -d /dev/loop7" })]
    [InlineData("create", new[] { "losetup -d /dev/loop8", "losetup -d /dev/loop7" })]
    public async Task Attach_FailingAtEachStep_UndoesWhatWasAttached_InReverseOrder(string failAt, string[] rollback)
    {
        var runner = Runner(failAt);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => DmSnapshotDisk.AttachAsync(runner, "/images/base.raw", "/vms/x/cow.img", "vmtools-abc", Ct));
        Assert.Equal("VmDmSnapshotFailed", e.ErrorId);
        Assert.Contains("scripted failure", e.Message);
        var calls = Argv(runner);
        var failedIndex = Array.FindIndex(runner.Calls.ToArray(), c => Key(c) == failAt);
        Assert.Equal(rollback, calls[(failedIndex + 1)..]);
    }

    [Fact]
    public async Task Attach_WhenRollbackAlsoFails_JoinsBothErrors_AndStillTriesEveryStep()
    {
        var runner = Runner(failAt: "create", failDetach: "detach /dev/loop8");
        var e = await Assert.ThrowsAsync<VmToolsException>(() => DmSnapshotDisk.AttachAsync(runner, "/b.raw", "/c.img", "vmtools-abc", Ct));
        Assert.Contains("dmsetup: scripted failure", e.Message);
        Assert.Contains("rollback: 'losetup -d /dev/loop8' exited 1", e.Message);
        Assert.Equal("losetup -d /dev/loop7", Argv(runner)[^1]); // the base loop is still released
    }

    [Fact]
    public async Task Detach_RemovesTargetThenCowThenBase_RetriesBusy_ToleratesGone_AndFoldsErrors()
    {
        var busyOnce = 0;
        var runner = new ScriptedRunner()
            .On(c => c.FileName == "dmsetup" && busyOnce++ == 0, c => new CommandResult(c, 1, "", "device-mapper: remove ioctl on vmtools-abc failed: Device or resource busy"))
            .On(c => c.FileName == "dmsetup", c => new CommandResult(c, 0, "", ""))
            .On(c => c.ToString() == "losetup -d /dev/loop8", c => new CommandResult(c, 1, "", "losetup: /dev/loop8: detach failed: No such device or address"))
            .On(c => c.ToString() == "losetup -d /dev/loop7", c => new CommandResult(c, 1, "", "losetup: /dev/loop7: detach failed: Permission denied"));
        var errors = await DmSnapshotDisk.DetachAsync(runner, new VmHandles { BaseLoop = "/dev/loop7", CowLoop = "/dev/loop8", DmName = "vmtools-abc" }, Ct);
        Assert.Equal(new[] { "dmsetup remove vmtools-abc", "dmsetup remove vmtools-abc", "losetup -d /dev/loop8", "losetup -d /dev/loop7" }, Argv(runner));
        var e = Assert.Single(errors);
        Assert.Contains("Permission denied", e);
    }

    [Fact]
    public async Task Teardown_OfADeadDmVm_ReleasesDmLoopsAndTap_AndKeepsHandlesWhenSomethingFailed()
    {
        using var dir = new TestSupport.TempDirectory("vmtools-dm");
        var vm = new FlightVm
        {
            Name = "dm", Id = "abc", State = VmState.Running, ImagePath = "/b.raw", DiskMode = VmDiskMode.DmSnapshot, OverlayPath = dir.Combine("cow.img"),
            Directory = dir.Path, ConsoleLogPath = dir.Combine("console.log"), QmpSocketPath = dir.Combine("qmp.sock"), Network = VmNetworkMode.Tap,
            TapName = "vmtdead-0", MacAddress = "52:54:00:00:00:01", MemoryMB = 64, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
        };
        var handles = new VmHandles { BaseLoop = "/dev/loop7", CowLoop = "/dev/loop8", DmName = vm.DmName, DmDevice = "/dev/mapper/" + vm.DmName, TapDevice = "vmtdead-0" };
        HandleStore.Set(vm, handles);
        var runner = new ScriptedRunner()
            .On(c => c.FileName == "dmsetup", c => new CommandResult(c, 1, "", "Failure to communicate with kernel device-mapper driver."))
            .On(c => c.FileName == "losetup", c => new CommandResult(c, 0, "", ""))
            .On(c => c.FileName == "ip", c => new CommandResult(c, 0, "", ""));
        var errors = await VmTeardown.ReleaseAsync(runner, vm, handles, null, Ct);
        Assert.Equal(new[] { "dmsetup remove vmtools-abc", "losetup -d /dev/loop8", "losetup -d /dev/loop7", "ip link del vmtdead-0" }, Argv(runner));
        Assert.Single(errors);
        Assert.True(File.Exists(vm.HandlesPath)); // a retry still knows what is left
        HandleStore.Clear(vm);
    }
}
