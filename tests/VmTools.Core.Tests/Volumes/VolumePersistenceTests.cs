using VmTools.Core.Volumes;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

/// <summary>
/// flynn's persistence tests (host/volume/manager/persistence_test.go) as specifications: a host
/// restart is emulated by <c>zpool export</c> plus a fresh state object, and the default-pool
/// factory must never run on the reopen.
/// </summary>
[Collection(ZfsCollection.Name)]
public sealed class VolumePersistenceTests(ZfsFuseDaemon daemon)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Restart_BringsBackSurvivingVolumes_AndReportsAVanishedDatasetAsMissing()
    {
        using var box = new VolumeSandbox(daemon);
        var pool = box.NewPool();
        Volume vol1, vol2;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, pool);
            vol1 = await store.CreateVolumeAsync(new VolumeRequest { Name = "first", Metadata = new Dictionary<string, string> { ["owner"] = "ci", ["job"] = "42" } }, Ct);
            vol2 = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            await File.WriteAllTextAsync(Path.Combine(vol1.Mountpoint, "alpha"), "data", Ct);
        }

        // Destroyed behind VmTools' back (the record is now stale), then the host goes down.
        ZfsFuseDaemon.DestroyDataset(vol2.Dataset);
        VolumeSandbox.Export(pool);
        Assert.False(File.Exists(Path.Combine(vol1.Mountpoint, "alpha")), "export must take the files away");

        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            Assert.Equal(new[] { vol1.Id, vol2.Id }.Order(), store.Volumes.Select(v => v.Id).Order());
            var back = store.GetVolume(vol1.Id);
            Assert.Equal(VolumeState.Available, back.State);
            Assert.Equal(vol1.Type, back.Type);
            Assert.Equal(vol1.Name, back.Name);
            Assert.Equal(vol1.Metadata, back.Metadata);
            Assert.Equal(vol1.CreatedAt, back.CreatedAt);
            Assert.Equal(vol1.Mountpoint, back.Mountpoint);
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(back.Mountpoint, "alpha"), Ct));
            Assert.Equal(VolumeState.Missing, store.GetVolume(vol2.Id).State);
            Assert.Equal(VolumePoolState.Online, store.GetPool(VolumePool.DefaultName).State);
        }
    }

    [Fact]
    public async Task Restart_AfterRemove_VolumeStaysRemoved()
    {
        using var box = new VolumeSandbox(daemon);
        var pool = box.NewPool();
        Volume vol;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, pool);
            vol = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            await store.RemoveAsync(vol.Id, recurse: false, Ct);
        }

        VolumeSandbox.Export(pool);
        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            Assert.Empty(store.Volumes);
            Assert.False(Directory.Exists(vol.Mountpoint));
            Assert.NotEqual(0, Programs.Run("zfs", "list", vol.Dataset).ExitCode);
        }
    }

    [Fact]
    public async Task Restart_KeepsSnapshots_WithTheirFilesAndReadOnly()
    {
        using var box = new VolumeSandbox(daemon);
        var pool = box.NewPool();
        Volume vol, snap;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, pool);
            vol = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            await File.WriteAllTextAsync(Path.Combine(vol.Mountpoint, "alpha"), "data", Ct);
            snap = await store.CreateSnapshotAsync(vol.Id, Ct);
        }

        VolumeSandbox.Export(pool);
        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            Assert.Equal(2, store.Volumes.Count);
            var back = store.GetVolume(snap.Id);
            Assert.True(back.IsSnapshot);
            Assert.Equal(snap.Dataset, back.Dataset);
            Assert.Equal(vol.Id, back.ParentVolumeId);
            Assert.Equal(snap.CreatedAt, back.CreatedAt);
            Assert.Equal(vol.CreatedAt, store.GetVolume(vol.Id).CreatedAt);
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(store.GetVolume(vol.Id).Mountpoint, "alpha"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(back.Mountpoint, "alpha"), Ct));
            Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(back.Mountpoint, "beta"), "x"));
        }
    }

    [Fact]
    public async Task Restart_KeepsATransmittedSnapshot_AsASnapshotHoldingTheData()
    {
        using var box = new VolumeSandbox(daemon);
        var pool = box.NewPool();
        Volume vol2, received;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, pool);
            var vol1 = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            await File.WriteAllTextAsync(Path.Combine(vol1.Mountpoint, "alpha"), "data", Ct);
            var snap = await store.CreateSnapshotAsync(vol1.Id, Ct);
            vol2 = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            var haves = await store.ListHavesAsync(vol2.Id, Ct);
            Assert.Empty(haves);

            var transfer = new VolumeTransfer(store);
            using var stream = new MemoryStream();
            var sent = await transfer.SendAsync(snap.Id, haves, stream, cancellationToken: Ct);
            Assert.False(sent.Incremental);
            stream.Position = 0;
            received = await transfer.ReceiveAsync(vol2.Id, stream, cancellationToken: Ct);

            Assert.True(received.IsSnapshot);
            Assert.NotEqual(snap.Id, received.Id);
            Assert.Equal(snap.SnapshotName, received.SnapshotName);
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(vol2.Mountpoint, "alpha"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(received.Mountpoint, "alpha"), Ct));
        }

        VolumeSandbox.Export(pool);
        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            Assert.Equal(4, store.Volumes.Count);
            var back = store.GetVolume(received.Id);
            Assert.True(back.IsSnapshot);
            Assert.Equal(vol2.Id, back.ParentVolumeId);
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(back.Mountpoint, "alpha"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(store.GetVolume(vol2.Id).Mountpoint, "alpha"), Ct));
        }
    }

    [Fact]
    public async Task Restart_ReleasesAHoldAnInterruptedSendLeft()
    {
        using var box = new VolumeSandbox(daemon);
        var pool = box.NewPool();
        Volume snap;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, pool);
            var vol = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            snap = await store.CreateSnapshotAsync(vol.Id, Ct);
            // What a send killed mid-stream leaves: its hold, recorded and placed.
            new VolumeRecords(db).AddHold(pool.Name, snap.Dataset, VolumeStore.SendHoldTag + "-killed");
            Programs.MustRun("zfs", "hold", VolumeStore.SendHoldTag + "-killed", snap.Dataset);
            Assert.Equal("1", UserRefs(snap.Dataset));
        }

        VolumeSandbox.Export(pool);
        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            Assert.Equal("0", UserRefs(snap.Dataset));
            Assert.Empty(new VolumeRecords(db).Holds());
            await store.RemoveAsync(snap.Id, recurse: false, Ct); // a held snapshot could not be destroyed
        }
    }

    [Fact]
    public async Task Restart_WithTheVdevGone_ReportsThePoolUnavailableAndItsVolumesMissing()
    {
        using var box = new VolumeSandbox(daemon);
        var pool = box.NewPool();
        Volume vol;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, pool);
            vol = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        }

        VolumeSandbox.Export(pool);
        File.Delete(pool.VdevPath);
        using (var db = box.OpenDb())
        {
            var warnings = new List<string>();
            var store = await Core.Volumes.VolumeStore.OpenAsync(db, Core.Host.ProcessRunner.Instance, warn: warnings.Add, cancellationToken: Ct);
            Assert.Equal(VolumePoolState.Unavailable, store.GetPool(VolumePool.DefaultName).State);
            Assert.Equal(VolumeState.Missing, store.GetVolume(vol.Id).State);
            Assert.NotEmpty(warnings);
            Assert.False(File.Exists(pool.VdevPath), "a reopen never re-creates a recorded pool");
            var e = await Assert.ThrowsAsync<VmToolsException>(() => store.CreateSnapshotAsync(vol.Id, Ct));
            Assert.Equal("VolumePoolUnavailable", e.ErrorId);
        }
    }

    private static string UserRefs(string snapshot) => Programs.MustRun("zfs", "get", "-H", "-p", "-o", "value", "userrefs", snapshot).Trim();
}
