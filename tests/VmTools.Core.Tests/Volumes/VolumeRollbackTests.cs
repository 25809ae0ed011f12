using System.Text;
using VmTools.Core.Tests.Vms;
using VmTools.Core.Vms;
using VmTools.Core.Volumes;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

/// <summary>Rolling a volume back to a snapshot on a real zfs-fuse pool: what is refused changes nothing, what is destroyed is gone from zfs and from the records.</summary>
[Collection(ZfsCollection.Name)]
public sealed class VolumeRollbackTests(ZfsFuseDaemon daemon)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string[] ZfsSnapshotsOf(Volume v)
        => Programs.MustRun("zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", v.Dataset).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static bool DatasetExists(string name) => Programs.Run("zfs", "list", "-H", "-o", "name", name).ExitCode == 0;

    [Fact]
    public async Task ToAnOlderSnapshot_IsRefusedWithoutDestroyNewer_AndChangesNothing_WithIt_TheVolumeHoldsAOnly_AndS2IsGoneEverywhere()
    {
        using var box = new VolumeSandbox(daemon);
        using var db = box.OpenDb();
        var store = await box.NewStoreWithPoolAsync(db);
        var v = await store.CreateVolumeAsync(new VolumeRequest { Name = "work" }, Ct);
        var a = Path.Combine(v.Mountpoint, "A");
        var b = Path.Combine(v.Mountpoint, "B");
        await File.WriteAllTextAsync(a, "a", Ct);
        var s1 = await store.CreateSnapshotAsync(v.Id, Ct);
        await File.WriteAllTextAsync(b, "b", Ct);
        var s2 = await store.CreateSnapshotAsync(v.Id, Ct);
        var rollback = new VolumeRollback(store);

        var refused = await Assert.ThrowsAsync<VmToolsException>(() => rollback.RestoreAsync("work", s1.Id, destroyNewer: false, vms: null, Ct));
        Assert.Equal("VolumeSnapshotNotLatest", refused.ErrorId);
        Assert.Equal(FailureKind.InvalidOperation, refused.Kind);
        Assert.Contains(s2.Id, refused.Message);
        Assert.Equal("b", await File.ReadAllTextAsync(b, Ct));
        Assert.Equal(new[] { s1.Dataset, s2.Dataset }, ZfsSnapshotsOf(v));
        Assert.Equal(new[] { s1.Id, s2.Id }, store.SnapshotsOf(v.Id).Select(s => s.Id));

        var plan = await rollback.PlanAsync("work", s1.Id, destroyNewer: true, vms: null, Ct);
        Assert.Equal(new[] { s2.Id }, plan.Newer.Select(s => s.Id));

        var restored = await rollback.RestoreAsync("work", s1.Id, destroyNewer: true, vms: null, Ct);
        Assert.Equal(v.Id, restored.Id);
        Assert.Equal("a", await File.ReadAllTextAsync(a, Ct));
        Assert.False(File.Exists(b));
        Assert.Equal(new[] { s1.Dataset }, ZfsSnapshotsOf(v));
        Assert.False(DatasetExists(s2.ViewDataset!));
        Assert.False(Directory.Exists(s2.Mountpoint));
        Assert.Equal(new[] { s1.Id }, store.SnapshotsOf(v.Id).Select(s => s.Id));
        Assert.Equal(new[] { s1.Id }, (await VolumeSandbox.ReopenAsync(db)).SnapshotsOf(v.Id).Select(s => s.Id));
        // The older snapshot's read-only view still shows its files.
        Assert.Equal("a", await File.ReadAllTextAsync(Path.Combine(s1.Mountpoint, "A"), Ct));
    }

    [Fact]
    public async Task ToTheNewestSnapshot_DiscardsLaterChanges_WithoutDestroyNewer_ByZfsSnapshotName()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllTextAsync(Path.Combine(v.Mountpoint, "A"), "a", Ct);
        var s1 = await store.CreateSnapshotAsync(v.Id, Ct);
        await File.WriteAllTextAsync(Path.Combine(v.Mountpoint, "A"), "changed", Ct);
        await new VolumeRollback(store).RestoreAsync(v.Id, s1.SnapshotName!, destroyNewer: false, vms: null, Ct);
        Assert.Equal("a", await File.ReadAllTextAsync(Path.Combine(v.Mountpoint, "A"), Ct));
        Assert.Equal(new[] { s1.Dataset }, ZfsSnapshotsOf(v));
    }

    [Fact]
    public async Task ANewerSnapshotTakenByHand_IsVolumeSnapshotNotRecorded_EvenWithDestroyNewer_AndSurvives()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var s1 = await store.CreateSnapshotAsync(v.Id, Ct);
        Programs.MustRun("zfs", "snapshot", v.Dataset + "@byhand");
        var e = await Assert.ThrowsAsync<VmToolsException>(() => new VolumeRollback(store).RestoreAsync(v.Id, s1.Id, destroyNewer: true, vms: null, Ct));
        Assert.Equal("VolumeSnapshotNotRecorded", e.ErrorId);
        Assert.Contains("@byhand", e.Message);
        Assert.Equal(new[] { s1.Dataset, v.Dataset + "@byhand" }, ZfsSnapshotsOf(v));
    }

    [Fact]
    public async Task ANewerSnapshotWithAClone_IsVolumeHasDependentClones_AndNothingIsDestroyed()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var s1 = await store.CreateSnapshotAsync(v.Id, Ct);
        var s2 = await store.CreateSnapshotAsync(v.Id, Ct);
        var s3 = await store.CreateSnapshotAsync(v.Id, Ct);
        var clone = await store.CloneAsync(s2.Id, new VolumeRequest(), Ct);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => new VolumeRollback(store).RestoreAsync(v.Id, s1.Id, destroyNewer: true, vms: null, Ct));
        Assert.Equal("VolumeHasDependentClones", e.ErrorId);
        Assert.Contains(clone.Id, e.Message);
        Assert.Equal(new[] { s1.Dataset, s2.Dataset, s3.Dataset }, ZfsSnapshotsOf(v));
        Assert.Equal(3, store.SnapshotsOf(v.Id).Count);
    }

    [Fact]
    public async Task UnknownSnapshot_OrAnotherVolumesSnapshot_IsVolumeSnapshotNotFound()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var other = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var foreign = await store.CreateSnapshotAsync(other.Id, Ct);
        foreach (var name in new[] { "nope", foreign.Id })
        {
            var e = await Assert.ThrowsAsync<VmToolsException>(() => new VolumeRollback(store).RestoreAsync(v.Id, name, destroyNewer: true, vms: null, Ct));
            Assert.Equal("VolumeSnapshotNotFound", e.ErrorId);
        }

        var onSnapshot = await Assert.ThrowsAsync<VmToolsException>(() => new VolumeRollback(store).RestoreAsync(foreign.Id, foreign.Id, destroyNewer: true, vms: null, Ct));
        Assert.Equal("VolumeIsASnapshot", onSnapshot.ErrorId);
    }

    /// <summary>
    /// A real qemu with the volume's disk image attached (Start-FlightVm -Volume): rolling the volume back
    /// under it is refused and the volume keeps what was written after the snapshot; once the VM is stopped
    /// the same rollback goes through.
    /// </summary>
    [Fact]
    public async Task WhileARunningVmHasItsDiskAttached_IsVolumeInUseByVm_AndNothingIsRolledBack_AfterTheVmStops_ItRollsBack()
    {
        using var box = new VolumeSandbox(daemon);
        using var bed = new VmTestBed();
        var store = await box.NewStoreAsync();
        var v = await store.CreateVolumeAsync(new VolumeRequest { Name = "data" }, Ct);
        v = await store.CreateDiskImageAsync(v.Id, 16L << 20, DiskImageFormat.Raw, cancellationToken: Ct);
        var s1 = await store.CreateSnapshotAsync(v.Id, Ct);
        // After the snapshot: bytes in the disk image and a file beside it, which a rollback would discard.
        var written = Encoding.ASCII.GetBytes("WRITTEN-AFTER-S1");
        using (var disk = new FileStream(v.DiskImagePath!, FileMode.Open, FileAccess.Write)) disk.Write(written);
        var later = Path.Combine(v.Mountpoint, "later");
        await File.WriteAllTextAsync(later, "after s1", Ct);

        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "user") with { VolumePaths = new[] { v.DiskImagePath! } });
        Assert.True(bed.Lifecycle.Handles("user").Alive);
        var rollback = new VolumeRollback(store);

        var refused = await Assert.ThrowsAsync<VmToolsException>(() => rollback.RestoreAsync("data", s1.Id, destroyNewer: false, bed.Lifecycle.Store, Ct));
        Assert.Equal("VolumeInUseByVm", refused.ErrorId);
        Assert.Equal(FailureKind.ResourceBusy, refused.Kind);
        Assert.Equal(v.Id, refused.Target);
        Assert.Contains($"VM '{vm.Name}'", refused.Message);
        Assert.Contains(v.DiskImagePath!, refused.Message);
        Assert.Equal("VolumeInUseByVm", (await Assert.ThrowsAsync<VmToolsException>(() => rollback.PlanAsync("data", s1.Id, destroyNewer: false, bed.Lifecycle.Store, Ct))).ErrorId);
        Assert.Equal(written, ReadStart(v.DiskImagePath!, written.Length));
        Assert.Equal("after s1", await File.ReadAllTextAsync(later, Ct));
        Assert.Equal(new[] { s1.Dataset }, ZfsSnapshotsOf(v));

        await bed.Lifecycle.StopAsync("user", TimeSpan.Zero, force: true, null, Ct);
        Assert.False(bed.Lifecycle.Handles("user").Alive);
        var restored = await rollback.RestoreAsync("data", s1.Id, destroyNewer: false, bed.Lifecycle.Store, Ct);
        Assert.Equal(v.DiskImagePath, restored.DiskImagePath);
        Assert.Equal(new byte[written.Length], ReadStart(v.DiskImagePath!, written.Length));
        Assert.False(File.Exists(later));
    }

    private static byte[] ReadStart(string path, int count)
    {
        var bytes = new byte[count];
        using var file = File.OpenRead(path);
        file.ReadExactly(bytes);
        return bytes;
    }

    [Fact]
    public async Task TheDiskImageRecord_FollowsTheContent()
    {
        using var box = new VolumeSandbox(daemon);
        using var db = box.OpenDb();
        var store = await box.NewStoreWithPoolAsync(db);
        var v = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var empty = await store.CreateSnapshotAsync(v.Id, Ct);
        v = await store.CreateDiskImageAsync(v.Id, 16L << 20, DiskImageFormat.Raw, cancellationToken: Ct);
        var withDisk = await store.CreateSnapshotAsync(v.Id, Ct);

        var restored = await new VolumeRollback(store).RestoreAsync(v.Id, empty.Id, destroyNewer: true, vms: null, Ct);
        Assert.Null(restored.DiskImagePath);
        Assert.False(File.Exists(v.DiskImagePath));
        Assert.Null((await VolumeSandbox.ReopenAsync(db)).GetVolume(v.Id).DiskImagePath);
        Assert.Equal("VolumeNotFound", Assert.Throws<VmToolsException>(() => store.GetVolume(withDisk.Id)).ErrorId);
    }
}
