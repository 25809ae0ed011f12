using System.Security.Cryptography;
using VmTools.Core.Host;
using VmTools.Core.Volumes;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

[Collection(ZfsCollection.Name)]
public sealed class ZfsPoolTests(ZfsFuseDaemon daemon)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Initialize_MissingVdev_CreatesASparseFileAndThePool_RecordedOnce()
    {
        using var box = new VolumeSandbox(daemon);
        var spec = box.NewPool();
        using (var db = box.OpenDb())
        {
            var store = await VolumeStore.OpenAsync(db, ProcessRunner.Instance, cancellationToken: Ct);
            var pool = await store.InitializePoolAsync(spec, Ct);
            Assert.Equal(VolumeSandbox.PoolSize, new FileInfo(spec.VdevPath).Length);
            Assert.True(AllocatedBytes(spec.VdevPath) < VolumeSandbox.PoolSize / 4, "the vdev must be sparse");
            Assert.Contains(pool.PoolName, Programs.MustRun("zpool", "list", "-H", "-o", "name"));
            Assert.Equal("none", Programs.MustRun("zfs", "get", "-H", "-o", "value", "mountpoint", pool.PoolName).Trim());
            Assert.Same(pool, await store.InitializePoolAsync(spec, Ct)); // same settings: idempotent
            var e = await Assert.ThrowsAsync<VmToolsException>(() => store.InitializePoolAsync(spec with { WorkingDirectory = box.Combine("elsewhere") }, Ct));
            Assert.Equal("VolumePoolAlreadyInitialized", e.ErrorId);
        }

        VolumeSandbox.Export(spec);
        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            var back = Assert.Single(store.Pools);
            Assert.Equal((spec.PoolName, spec.VdevPath, spec.WorkingDirectory, spec.VdevSizeBytes), (back.PoolName, back.VdevPath, back.WorkingDirectory, back.VdevSizeBytes));
            Assert.Equal(VolumePoolState.Online, back.State);
        }
    }

    [Fact]
    public async Task Open_WithoutADefaultPool_AsksTheFactoryOnce()
    {
        using var box = new VolumeSandbox(daemon);
        var spec = box.NewPool("ignored-name");
        var calls = 0;
        using var db = box.OpenDb();
        var store = await VolumeStore.OpenAsync(db, ProcessRunner.Instance, _ => { calls++; return Task.FromResult<VolumePool?>(spec); }, cancellationToken: Ct);
        Assert.Equal(1, calls);
        Assert.Equal(VolumePool.DefaultName, Assert.Single(store.Pools).Name);
        await VolumeSandbox.ReopenAsync(db); // the throwing factory is not called now
    }

    [Fact]
    public async Task Initialize_ExistingExportedPoolFile_ImportsIt_WithoutRecreating()
    {
        using var box = new VolumeSandbox(daemon);
        var spec = box.NewPool();
        Volume marker;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, spec);
            marker = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        }

        VolumeSandbox.Export(spec);
        File.Delete(box.DatabasePath); // a new host adopting an orphaned vdev file
        using (var db = box.OpenDb())
        {
            var store = await VolumeStore.OpenAsync(db, ProcessRunner.Instance, cancellationToken: Ct);
            await store.InitializePoolAsync(spec, Ct);
            Assert.Equal(0, Programs.Run("zfs", "list", marker.Dataset).ExitCode);
        }
    }

    [Fact]
    public async Task Initialize_FileThatIsNotAPool_FailsAndTouchesNothing()
    {
        using var box = new VolumeSandbox(daemon);
        var spec = box.NewPool();
        Directory.CreateDirectory(Path.GetDirectoryName(spec.VdevPath)!);
        var content = TestBytes(1 << 20);
        await File.WriteAllBytesAsync(spec.VdevPath, content, Ct);
        var before = SHA256.HashData(content);

        using var db = box.OpenDb();
        var store = await VolumeStore.OpenAsync(db, ProcessRunner.Instance, cancellationToken: Ct);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => store.InitializePoolAsync(spec, Ct));
        Assert.Equal("VolumeVdevNotAPool", e.ErrorId);
        Assert.Equal(FailureKind.InvalidData, e.Kind);
        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(spec.VdevPath, Ct)));
        Assert.Empty(store.Pools);
        Assert.Empty((await VolumeStore.OpenAsync(db, ProcessRunner.Instance, cancellationToken: Ct)).Pools);
        Assert.NotEqual(0, Programs.Run("zpool", "list", spec.PoolName).ExitCode);
    }

    [Fact]
    public async Task Initialize_BadSettings_AreRefusedBeforeAnythingIsCreated()
    {
        using var box = new VolumeSandbox(daemon);
        using var db = box.OpenDb();
        var store = await VolumeStore.OpenAsync(db, ProcessRunner.Instance, cancellationToken: Ct);
        var spec = box.NewPool();
        var small = await Assert.ThrowsAsync<VmToolsException>(() => store.InitializePoolAsync(spec with { VdevSizeBytes = 1 << 20 }, Ct));
        Assert.Equal("VolumePoolSizeInvalid", small.ErrorId);
        var name = await Assert.ThrowsAsync<VmToolsException>(() => store.InitializePoolAsync(spec with { PoolName = "bad/name" }, Ct));
        Assert.Equal("VolumePoolNameInvalid", name.ErrorId);
        Assert.False(File.Exists(spec.VdevPath));
    }

    [Fact]
    public void DefaultVdevSize_IsSeventyPercentOfTheFilesystemHoldingIt()
    {
        var total = new DriveInfo(Path.GetTempPath()).TotalSize;
        Assert.Equal(total / 10 * 7, ZfsProvider.DefaultVdevSize(Path.Combine(Path.GetTempPath(), "no", "such", "dir", "x.vdev")));
    }

    private static long AllocatedBytes(string path)
        => long.Parse(Programs.MustRun("stat", "-c", "%b", path).Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;

    private static byte[] TestBytes(int n)
    {
        var b = new byte[n];
        Random.Shared.NextBytes(b);
        return b;
    }
}
