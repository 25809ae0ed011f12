using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Host;

/// <summary>Files that hold secrets are private whatever the umask: each case runs under umask 000.</summary>
[Collection(PermissiveUmaskCollection.Name)]
public sealed class PrivateFilesTests : IDisposable
{
    private const UnixFileMode Dir0700 = (UnixFileMode)0x1C0;
    private const UnixFileMode File0600 = (UnixFileMode)0x180;
    private readonly TempDirectory _temp = new("vmtools-private");

    public void Dispose() => _temp.Dispose();

    private static UnixFileMode Mode(string path) => PermissiveUmask.ModeOf(path);

    [Fact]
    public void Directory_IsCreated0700_AndAnExistingOpenOneIsTightened()
    {
        using var _ = new PermissiveUmask();
        var fresh = _temp.Combine("a", "b");
        PrivateFiles.CreateDirectory(fresh);
        Assert.Equal(Dir0700, Mode(fresh));
        var open = _temp.Combine("open");
        Directory.CreateDirectory(open, (UnixFileMode)0x1FF);
        Assert.Equal((UnixFileMode)0x1FF, Mode(open)); // the umask really is 000
        PrivateFiles.CreateDirectory(open);
        Assert.Equal(Dir0700, Mode(open));
    }

    [Fact]
    public void File_IsCreated0600_AndPrecreatingAnExistingOneKeepsItsContentAndTightensIt()
    {
        using var _ = new PermissiveUmask();
        var path = _temp.Combine("secret");
        using (var s = PrivateFiles.Open(path)) s.WriteByte(1);
        Assert.Equal(File0600, Mode(path));
        var loose = _temp.Combine("loose");
        File.WriteAllText(loose, "kept");
        Assert.Equal((UnixFileMode)0x1B6, Mode(loose)); // 0666: what an ordinary create gets under umask 000
        PrivateFiles.Precreate(loose);
        Assert.Equal(File0600, Mode(loose));
        Assert.Equal("kept", File.ReadAllText(loose));
    }

    [Fact]
    public void StateDirectoryAndDatabase_WithWalAndShm_ArePrivate()
    {
        using var _ = new PermissiveUmask();
        var paths = new VmToolsPaths(_temp.Combine("state"), _temp.Combine("cache"), _temp.Combine("run")).EnsureCreated();
        Assert.Equal(Dir0700, Mode(paths.StateDirectory));
        Assert.Equal(Dir0700, Mode(paths.VmDirectory));
        Assert.Equal(Dir0700, Mode(paths.RuntimeDirectory));
        using var db = StateDb.Open(paths.DatabasePath);
        db.InTransaction(tx => db.Command("CREATE TABLE IF NOT EXISTS mode_probe (x INTEGER)", tx).ExecuteNonQuery());
        Assert.True(File.Exists(paths.DatabasePath + "-wal"));
        Assert.True(File.Exists(paths.DatabasePath + "-shm"));
        foreach (var f in new[] { paths.DatabasePath, paths.DatabasePath + "-wal", paths.DatabasePath + "-shm" }) Assert.Equal(File0600, Mode(f));
    }

    [Fact]
    public void DatabaseLeftWorldReadableByAnOlderVersion_IsTightenedOnOpen()
    {
        var path = _temp.Combine("old", "vmtools.db");
        using (StateDb.Open(path)) { }
        File.SetUnixFileMode(path, (UnixFileMode)0x1A4);
        using (StateDb.Open(path)) { }
        Assert.Equal(File0600, Mode(path));
    }

    [Fact]
    public async Task Overlay_MadeByRealQemuImg_Is0600_AndAValidOverlayOfItsBase()
    {
        var qemuImg = RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        var basePath = TestDisks.CreateQcow2(_temp.Combine("base.qcow2"), 1, seed: 70);
        var overlay = _temp.Combine("vm", "overlay.qcow2");
        using (new PermissiveUmask())
        {
            PrivateFiles.CreateDirectory(_temp.Combine("vm"));
            await OverlayDisk.CreateAsync(ProcessRunner.Instance, basePath, overlay, TestContext.Current.CancellationToken);
        }

        Assert.Equal(File0600, Mode(overlay));
        Assert.Contains("backing file: " + basePath, Programs.MustRun(qemuImg, "info", overlay));
    }
}

/// <summary>
/// A VM's files right after a start attempt through the real lifecycle, under umask 000. qemu is given a
/// file that is not a kernel, so it opens its console and QMP socket, then fails before any guest code
/// runs (no accelerator is exercised): the directory, overlay and console are then as a boot leaves them.
/// </summary>
[Collection(PermissiveUmaskCollection.Name)]
public sealed class VmFileModesTests
{
    [Fact]
    public async Task StartAttempt_LeavesA0700VmDirectory_A0600Overlay_AndA0600ConsoleLog()
    {
        RealComponent.RequireProgram("qemu-system-x86_64", "apt-get install qemu-system-x86");
        using var bed = new Vms.VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        var notAKernel = bed.Combine("kernel-file");
        File.WriteAllText(notAKernel, "not a kernel");
        IReadOnlyList<VmStartResult> results;
        using (new PermissiveUmask())
        {
            results = await bed.Lifecycle.StartAsync(bed.Request(baseImage, "modes") with { KernelPath = notAKernel }, null, TestContext.Current.CancellationToken);
        }

        var vm = Assert.Single(results).Vm;
        Assert.Equal((UnixFileMode)0x1C0, PermissiveUmask.ModeOf(vm.Directory));
        Assert.Equal((UnixFileMode)0x180, PermissiveUmask.ModeOf(vm.OverlayPath));
        Assert.Equal((UnixFileMode)0x180, PermissiveUmask.ModeOf(vm.ConsoleLogPath));
        Assert.Equal(Path.GetDirectoryName(vm.QmpSocketPath), vm.Directory); // the 0700 directory is what guards the socket
    }

    [Fact]
    public void RealQemu_OpeningAPrecreatedConsoleLog_TruncatesItButKeepsMode0600()
    {
        var qemu = RealComponent.RequireProgram("qemu-system-x86_64", "apt-get install qemu-system-x86");
        using var dir = new TempDirectory("vmtools-console");
        var log = dir.Combine("console.log");
        var notAKernel = dir.Combine("kernel-file");
        File.WriteAllText(notAKernel, "not a kernel");
        using (new PermissiveUmask())
        {
            PrivateFiles.Precreate(log);
            File.WriteAllText(log, "stale output of an earlier boot");
            // The serial chardev is opened before the kernel is loaded; the bad kernel then stops qemu before any guest code runs.
            var (code, _, _) = Programs.Run(qemu, "-M", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-serial", "file:" + log, "-kernel", notAKernel);
            Assert.NotEqual(0, code);
        }

        Assert.Equal(0, new FileInfo(log).Length); // qemu did open it (O_TRUNC) ...
        Assert.Equal((UnixFileMode)0x180, PermissiveUmask.ModeOf(log)); // ... and the mode stayed
    }
}
