using VmTools.Core.Volumes;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

/// <summary>Volume lifecycle and bad input: each refusal has its own ErrorId and destroys nothing.</summary>
[Collection(ZfsCollection.Name)]
public sealed class VolumeOperationTests(ZfsFuseDaemon daemon)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Volume_IsADatasetUnderPoolTypeId_MountedUnderTheWorkingDir_WithQuota()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var pool = store.GetPool(VolumePool.DefaultName);
        var v = await store.CreateVolumeAsync(new VolumeRequest { Name = "cache", QuotaBytes = 32 << 20 }, Ct);
        Assert.Equal($"{pool.PoolName}/data/{v.Id}", v.Dataset);
        Assert.Equal(Path.Combine(pool.WorkingDirectory, "mnt", "data", v.Id), v.Mountpoint);
        Assert.Equal(v.Mountpoint, Programs.MustRun("zfs", "get", "-H", "-o", "value", "mountpoint", v.Dataset).Trim());
        Assert.Equal((32 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), Programs.MustRun("zfs", "get", "-H", "-p", "-o", "value", "quota", v.Dataset).Trim());
        Assert.Same(v, store.GetVolume("cache"));
        var dup = await Assert.ThrowsAsync<VmToolsException>(() => store.CreateVolumeAsync(new VolumeRequest { Name = "cache" }, Ct));
        Assert.Equal("VolumeNameInUse", dup.ErrorId);
    }

    [Fact]
    public async Task Snapshot_IsReadOnlyAndIsolated_CloneIsWritableAndIsolated()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllTextAsync(Path.Combine(v.Mountpoint, "alpha"), "1", Ct);
        var snap = await store.CreateSnapshotAsync(v.Id, Ct);
        Assert.Equal($"{v.Dataset}@{snap.Id}", snap.Dataset);
        await File.WriteAllTextAsync(Path.Combine(v.Mountpoint, "alpha"), "2", Ct);
        Assert.Equal("1", await File.ReadAllTextAsync(Path.Combine(snap.Mountpoint, "alpha"), Ct));
        // zfs-fuse refuses creating files in a readonly filesystem but lets an existing file be opened
        // for writing; either way the zfs snapshot itself (what send and clone read) never changes.
        Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(snap.Mountpoint, "beta"), "x"));

        var clone = await store.CloneAsync(snap.Id, new VolumeRequest(), Ct);
        Assert.Equal(snap.Id, clone.ParentSnapshotId);
        await File.WriteAllTextAsync(Path.Combine(clone.Mountpoint, "alpha"), "3", Ct);
        Assert.Equal("1", await File.ReadAllTextAsync(Path.Combine(snap.Mountpoint, "alpha"), Ct));
        Assert.Equal("2", await File.ReadAllTextAsync(Path.Combine(v.Mountpoint, "alpha"), Ct));

        var dependent = await Assert.ThrowsAsync<VmToolsException>(() => store.RemoveAsync(v.Id, recurse: true, Ct));
        Assert.Equal("VolumeHasDependentClones", dependent.ErrorId);
        Assert.Equal(3, store.Volumes.Count);
        await store.RemoveAsync(clone.Id, recurse: false, Ct);
        await store.RemoveAsync(v.Id, recurse: true, Ct);
        Assert.Empty(store.Volumes);
    }

    [Fact]
    public async Task Remove_VolumeWithSnapshots_IsRefusedUnlessRecurse_AndNothingIsDestroyed()
    {
        using var box = new VolumeSandbox(daemon);
        using var db = box.OpenDb();
        var store = await box.NewStoreWithPoolAsync(db);
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllTextAsync(Path.Combine(v.Mountpoint, "alpha"), "1", Ct);
        var snap = await store.CreateSnapshotAsync(v.Id, Ct);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => store.RemoveAsync(v.Id, recurse: false, Ct));
        Assert.Equal("VolumeHasSnapshots", e.ErrorId);
        Assert.Equal("1", await File.ReadAllTextAsync(Path.Combine(v.Mountpoint, "alpha"), Ct));
        Assert.Equal(0, Programs.Run("zfs", "list", "-t", "snapshot", snap.Dataset).ExitCode);

        var removed = await store.RemoveAsync(v.Id, recurse: true, Ct);
        Assert.Equal(new[] { snap.Id, v.Id }, removed.Select(r => r.Id));
        Assert.NotEqual(0, Programs.Run("zfs", "list", v.Dataset).ExitCode);
        Assert.Empty((await VolumeSandbox.ReopenAsync(db)).Volumes);
    }

    [Fact]
    public async Task UnknownId_IsVolumeNotFound_ForEveryOperation()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var transfer = new VolumeTransfer(store);
        var unknown = Guid.NewGuid().ToString();
        var file = box.Combine("never.zstream");
        foreach (var op in new Func<Task>[]
                 {
                     () => Task.FromResult(store.GetVolume(unknown)),
                     () => store.CreateSnapshotAsync(unknown, Ct),
                     () => store.RemoveAsync(unknown, false, Ct),
                     () => store.ListHavesAsync(unknown, Ct),
                     () => transfer.SendToFileAsync(unknown, null, file, false, cancellationToken: Ct),
                     () => transfer.ReceiveAsync(unknown, new MemoryStream(new byte[400]), cancellationToken: Ct),
                 })
        {
            var e = await Assert.ThrowsAsync<VmToolsException>(op);
            Assert.Equal("VolumeNotFound", e.ErrorId);
            Assert.Equal(FailureKind.NotFound, e.Kind);
        }

        Assert.False(File.Exists(file));
        var noPool = await Assert.ThrowsAsync<VmToolsException>(() => store.CreateVolumeAsync(new VolumeRequest { Pool = "nope" }, Ct));
        Assert.Equal("VolumePoolNotInitialized", noPool.ErrorId);
    }

    [Fact]
    public async Task Send_OfAVolumeThatIsNotASnapshot_IsRefusedAndWritesNoFile()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var file = box.Combine("out.zstream");
        var e = await Assert.ThrowsAsync<VmToolsException>(() => new VolumeTransfer(store).SendToFileAsync(v.Id, null, file, false, cancellationToken: Ct));
        Assert.Equal("VolumeNotASnapshot", e.ErrorId);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(file)!, "*zstream*"));
        var clone = await Assert.ThrowsAsync<VmToolsException>(() => store.CloneAsync(v.Id, new VolumeRequest(), Ct));
        Assert.Equal("VolumeNotASnapshot", clone.ErrorId);
    }

    [Fact]
    public async Task Receive_FullStreamIntoAVolumeWithSnapshots_IsRefused_AndTheVolumeIsUntouched()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var transfer = new VolumeTransfer(store);
        var source = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var sourceSnap = await store.CreateSnapshotAsync(source.Id, Ct);
        var target = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllTextAsync(Path.Combine(target.Mountpoint, "mine"), "keep", Ct);
        await store.CreateSnapshotAsync(target.Id, Ct);
        var havesBefore = await store.ListHavesAsync(target.Id, Ct);

        using var full = new MemoryStream();
        await transfer.SendAsync(sourceSnap.Id, null, full, cancellationToken: Ct);
        full.Position = 0;
        var e = await Assert.ThrowsAsync<VmToolsException>(() => transfer.ReceiveAsync(target.Id, full, cancellationToken: Ct));
        Assert.Equal("VolumeReceiveFullStreamIntoSnapshots", e.ErrorId);
        var direct = await Assert.ThrowsAsync<VmToolsException>(() => transfer.TransferAsync(sourceSnap.Id, target.Id, cancellationToken: Ct));
        Assert.Equal("VolumeReceiveFullStreamIntoSnapshots", direct.ErrorId);

        Assert.Equal("keep", await File.ReadAllTextAsync(Path.Combine(target.Mountpoint, "mine"), Ct));
        Assert.Equal(havesBefore, await store.ListHavesAsync(target.Id, Ct));
        Assert.Equal(4, store.Volumes.Count);
    }

    [Fact]
    public async Task Receive_SomethingThatIsNotAStream_IsVolumeStreamInvalid()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var target = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllTextAsync(Path.Combine(target.Mountpoint, "mine"), "keep", Ct);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => new VolumeTransfer(store).ReceiveAsync(target.Id, new MemoryStream(VolumeTransferTests.RandomBytes(4096)), cancellationToken: Ct));
        Assert.Equal("VolumeStreamInvalid", e.ErrorId);
        Assert.Equal("keep", await File.ReadAllTextAsync(Path.Combine(target.Mountpoint, "mine"), Ct));
    }

    [Fact]
    public async Task DiskImage_RawIsSparse_Qcow2IsMadeByQemuImg_AndSnapshotsCarryIt()
    {
        using var box = new VolumeSandbox(daemon);
        RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        using var db = box.OpenDb();
        var store = await box.NewStoreWithPoolAsync(db);
        var raw = await store.CreateVolumeAsync(new VolumeRequest { Type = VolumeTypes.Disk }, Ct);
        raw = await store.CreateDiskImageAsync(raw.Id, 1L << 30, DiskImageFormat.Raw, cancellationToken: Ct);
        Assert.Equal(Path.Combine(raw.Mountpoint, "disk.img"), raw.DiskImagePath);
        Assert.Equal(1L << 30, new FileInfo(raw.DiskImagePath!).Length);
        Assert.Contains("file format: raw", Programs.MustRun("qemu-img", "info", raw.DiskImagePath!));

        var q = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        q = await store.CreateDiskImageAsync(q.Id, 256L << 20, DiskImageFormat.Qcow2, cancellationToken: Ct);
        var info = Programs.MustRun("qemu-img", "info", q.DiskImagePath!);
        Assert.Contains("file format: qcow2", info);
        Assert.Contains("virtual size: 256 MiB", info);
        var again = await Assert.ThrowsAsync<VmToolsException>(() => store.CreateDiskImageAsync(q.Id, 1 << 20, DiskImageFormat.Raw, cancellationToken: Ct));
        Assert.Equal("VolumeDiskExists", again.ErrorId);

        var snap = await store.CreateSnapshotAsync(q.Id, Ct);
        Assert.Equal(Path.Combine(snap.Mountpoint, "disk.qcow2"), snap.DiskImagePath);
        Assert.True(File.Exists(snap.DiskImagePath));
        Assert.Equal(q.DiskImagePath, (await VolumeSandbox.ReopenAsync(db)).GetVolume(q.Id).DiskImagePath);
    }
}
