using System.Diagnostics;
using VmTools.Core.Volumes;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

[Collection(ZfsCollection.Name)]
public sealed class VolumeTransferTests(ZfsFuseDaemon daemon)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task IncrementalSend_CarriesOnlyTheDelta_AndYieldsOldAndNewFiles()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var transfer = new VolumeTransfer(store);
        var (source, snap1) = await SnapshotOfRandomFileAsync(store, "alpha", 4 << 20);
        var target = await store.CreateVolumeAsync(new VolumeRequest(), Ct);

        using (var full1 = new MemoryStream())
        {
            await transfer.SendAsync(snap1.Id, await store.ListHavesAsync(target.Id, Ct), full1, cancellationToken: Ct);
            full1.Position = 0;
            await transfer.ReceiveAsync(target.Id, full1, cancellationToken: Ct);
        }

        await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "beta"), "new", Ct);
        var snap2 = await store.CreateSnapshotAsync(source.Id, Ct);

        using var full2 = new MemoryStream();
        var fullResult = await transfer.SendAsync(snap2.Id, null, full2, cancellationToken: Ct);
        using var delta = new MemoryStream();
        var haves = await store.ListHavesAsync(target.Id, Ct);
        var deltaResult = await transfer.SendAsync(snap2.Id, haves, delta, cancellationToken: Ct);

        Assert.False(fullResult.Incremental);
        Assert.True(deltaResult.Incremental);
        Assert.Equal("@" + snap1.SnapshotName, deltaResult.FromSnapshot);
        Assert.Equal(delta.Length, deltaResult.BytesSent);
        Assert.True(delta.Length * 20 < full2.Length, $"delta {delta.Length} B should be far smaller than the full stream {full2.Length} B");

        delta.Position = 0;
        var received = await transfer.ReceiveAsync(target.Id, delta, cancellationToken: Ct);
        Assert.Equal(snap2.SnapshotName, received.SnapshotName);
        foreach (var dir in new[] { target.Mountpoint, received.Mountpoint })
        {
            Assert.Equal(4 << 20, new FileInfo(Path.Combine(dir, "alpha")).Length);
            Assert.Equal("new", await File.ReadAllTextAsync(Path.Combine(dir, "beta"), Ct));
        }
    }

    /// <summary>
    /// zfs-fuse fails a receive with a bare "I/O error" now and then (seen in CI on an incremental
    /// receive). The real zfs runs throughout; only the first receive is answered with that failure.
    /// </summary>
    [Fact]
    public async Task ReceiveAnsweredWithAnIoError_IsTriedOnceMore_FromAFileAndInATransfer()
    {
        using var box = new VolumeSandbox(daemon);
        var runner = new FirstReceiveFails();
        var store = await box.NewStoreAsync(runner);
        var transfer = new VolumeTransfer(store);
        var (_, snap) = await SnapshotOfRandomFileAsync(store, "alpha", 1 << 20);

        var viaTransfer = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        runner.Armed = true;
        var received = await transfer.TransferAsync(snap.Id, viaTransfer.Id, cancellationToken: Ct);
        Assert.False(runner.Armed, "the injected failure was never used");
        Assert.Equal(1 << 20, new FileInfo(Path.Combine(received.Mountpoint, "alpha")).Length);

        var file = box.Combine("snap.zfs");
        await transfer.SendToFileAsync(snap.Id, null, file, overwrite: false, cancellationToken: Ct);
        var viaFile = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        runner.Armed = true;
        await using (var stream = File.OpenRead(file))
        {
            received = await transfer.ReceiveAsync(viaFile.Id, stream, cancellationToken: Ct);
        }

        Assert.False(runner.Armed, "the injected failure was never used");
        Assert.Equal(1 << 20, new FileInfo(Path.Combine(received.Mountpoint, "alpha")).Length);

        // A stream that cannot be read again is not retried: the error reaches the caller.
        var viaPipe = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        runner.Armed = true;
        await using var once = new NonSeekable(File.OpenRead(file));
        var e = await Assert.ThrowsAsync<VmToolsException>(() => transfer.ReceiveAsync(viaPipe.Id, once, cancellationToken: Ct));
        Assert.Equal(ZfsProvider.TransientReceiveErrorId, e.ErrorId);
    }

    /// <summary>
    /// zfs-fuse has also answered "I/O error" after committing the snapshot (seen in a full-suite run):
    /// the snapshot is recorded, not received twice (which zfs would refuse: "destination has snapshots").
    /// </summary>
    [Fact]
    public async Task IoErrorAfterTheSnapshotLanded_IsRecordedNotReceivedAgain()
    {
        using var box = new VolumeSandbox(daemon);
        var runner = new FirstReceiveFails { AfterRunning = true };
        var store = await box.NewStoreAsync(runner);
        var transfer = new VolumeTransfer(store);
        var (_, snap) = await SnapshotOfRandomFileAsync(store, "alpha", 1 << 20);

        var viaTransfer = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        runner.Armed = true;
        var received = await transfer.TransferAsync(snap.Id, viaTransfer.Id, cancellationToken: Ct);
        Assert.Equal(1, runner.Receives);
        Assert.Equal(snap.SnapshotName, received.SnapshotName);

        var file = box.Combine("snap.zfs");
        await transfer.SendToFileAsync(snap.Id, null, file, overwrite: false, cancellationToken: Ct);
        var viaPipe = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        runner.Armed = true;
        await using var once = new NonSeekable(File.OpenRead(file));
        received = await transfer.ReceiveAsync(viaPipe.Id, once, cancellationToken: Ct);
        Assert.Equal(2, runner.Receives);
        Assert.Equal(1 << 20, new FileInfo(Path.Combine(received.Mountpoint, "alpha")).Length);
    }

    /// <summary>
    /// The real runner, except that the first zfs receive after arming fails with a bare I/O error as
    /// zfs-fuse sometimes does: before running, or (<see cref="AfterRunning"/>) after it succeeded.
    /// </summary>
    private sealed class FirstReceiveFails : VmTools.Core.Host.ICommandRunner
    {
        public volatile bool Armed;

        public bool AfterRunning { get; init; }

        public int Receives;

        public async Task<VmTools.Core.Host.CommandResult> RunAsync(VmTools.Core.Host.CommandSpec command, CancellationToken cancellationToken = default)
        {
            if (command.FileName != "zfs" || command.Arguments.FirstOrDefault() != "receive") return await VmTools.Core.Host.ProcessRunner.Instance.RunAsync(command, cancellationToken);
            var fail = Armed;
            Armed = false;
            if (fail && !AfterRunning) return new VmTools.Core.Host.CommandResult(command, 1, "", "cannot receive new filesystem stream: I/O error\n");
            var real = await VmTools.Core.Host.ProcessRunner.Instance.RunAsync(command, cancellationToken);
            Interlocked.Increment(ref Receives);
            return fail ? real with { ExitCode = 1, StandardError = "cannot receive new filesystem stream: I/O error\n" } : real;
        }
    }

    private sealed class NonSeekable(Stream inner) : VmTools.Core.Host.ReadOnlyStream
    {
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }

    [Fact]
    public async Task Send_PicksTheNewestSharedSnapshot_NotJustTheFirst()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var transfer = new VolumeTransfer(store);
        var source = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var target = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var s1 = await store.CreateSnapshotAsync(source.Id, Ct);
        await transfer.TransferAsync(s1.Id, target.Id, cancellationToken: Ct);
        await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "two"), "2", Ct);
        var s2 = await store.CreateSnapshotAsync(source.Id, Ct);
        await transfer.TransferAsync(s2.Id, target.Id, cancellationToken: Ct);
        await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "three"), "3", Ct);
        var s3 = await store.CreateSnapshotAsync(source.Id, Ct);

        using var stream = new MemoryStream();
        var result = await transfer.SendAsync(s3.Id, await store.ListHavesAsync(target.Id, Ct), stream, cancellationToken: Ct);
        Assert.Equal("@" + s2.SnapshotName, result.FromSnapshot);
    }

    [Fact]
    public async Task Transfer_AcrossPools_FullThenIncremental_AndSurvivesRestartOfBoth()
    {
        using var box = new VolumeSandbox(daemon);
        var poolA = box.NewPool();
        var poolB = box.NewPool("b");
        string targetId, secondId;
        using (var db = box.OpenDb())
        {
            var store = await box.NewStoreWithPoolAsync(db, poolA);
            await store.InitializePoolAsync(poolB, Ct);
            var transfer = new VolumeTransfer(store);
            var source = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
            var target = await store.CreateVolumeAsync(new VolumeRequest { Pool = "b" }, Ct);
            targetId = target.Id;
            Assert.StartsWith(poolB.PoolName + "/", target.Dataset, StringComparison.Ordinal);
            await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "alpha"), "a", Ct);
            var s1 = await store.CreateSnapshotAsync(source.Id, Ct);
            var progress = new List<TransferProgress>();
            var first = await transfer.TransferAsync(s1.Id, target.Id, new SyncProgress(progress.Add), Ct);
            Assert.Equal("b", first.Pool);
            Assert.NotEmpty(progress);
            Assert.Equal("a", await File.ReadAllTextAsync(Path.Combine(target.Mountpoint, "alpha"), Ct));

            await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "beta"), "b", Ct);
            var s2 = await store.CreateSnapshotAsync(source.Id, Ct);
            var second = await transfer.TransferAsync(s2.Id, target.Id, cancellationToken: Ct);
            secondId = second.Id;
            // Incremental: the first received snapshot is still there (a full stream would have been refused).
            Assert.Equal(new[] { s1.SnapshotName, s2.SnapshotName }, (await store.ListHavesAsync(target.Id, Ct)).Select(h => h.SnapshotName));
            Assert.Equal("b", await File.ReadAllTextAsync(Path.Combine(second.Mountpoint, "beta"), Ct));
        }

        VolumeSandbox.Export(poolA);
        VolumeSandbox.Export(poolB);
        using (var db = box.OpenDb())
        {
            var store = await VolumeSandbox.ReopenAsync(db);
            Assert.Equal(6, store.Volumes.Count);
            Assert.All(store.Volumes, v => Assert.Equal(VolumeState.Available, v.State));
            Assert.Equal("a", await File.ReadAllTextAsync(Path.Combine(store.GetVolume(targetId).Mountpoint, "alpha"), Ct));
            Assert.Equal("b", await File.ReadAllTextAsync(Path.Combine(store.GetVolume(secondId).Mountpoint, "beta"), Ct));
        }
    }

    [Fact]
    public async Task Transfer_Cancelled_KillsBothEnds_ReleasesTheHold_AndRecordsNothing()
    {
        using var box = new VolumeSandbox(daemon);
        using var db = box.OpenDb();
        var store = await box.NewStoreWithPoolAsync(db);
        var transfer = new VolumeTransfer(store);
        var (_, snap) = await SnapshotOfRandomFileAsync(store, "big", 96 << 20);
        var target = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        var before = store.Volumes.Count;

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var progress = new SyncProgress(p => { if (p.BytesDone > (2 << 20)) cts.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => transfer.TransferAsync(snap.Id, target.Id, progress, cts.Token));

        Assert.True(SpinWait.SpinUntil(() => ZfsChildren().Count == 0, TimeSpan.FromSeconds(10)), "zfs send/receive still running: " + string.Join(", ", ZfsChildren()));
        Assert.Equal("0", Programs.MustRun("zfs", "get", "-H", "-p", "-o", "value", "userrefs", snap.Dataset).Trim());
        Assert.Empty(new VolumeRecords(db).Holds());
        Assert.Equal(before, store.Volumes.Count);
        Assert.Empty(await store.ListHavesAsync(target.Id, Ct));
    }

    [Fact]
    public async Task SendToFile_WritesTheStreamAtomically_AndItReceivesLikeZfsOwn()
    {
        using var box = new VolumeSandbox(daemon);
        var store = await box.NewStoreAsync();
        var transfer = new VolumeTransfer(store);
        var source = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "alpha"), "a", Ct);
        var snap = await store.CreateSnapshotAsync(source.Id, Ct);
        var file = box.Combine("out", "snap.zstream");
        var result = await transfer.SendToFileAsync(snap.Id, null, file, overwrite: false, cancellationToken: Ct);
        Assert.Equal(file, result.Path);
        Assert.Equal(new FileInfo(file).Length, result.BytesSent);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(file)!));
        // The stream is the volume's whole content: as private as the volume (under the usual umask 022 an
        // ordinary create would be 0644; the umask-000 cases live in PrivateFilesTests, which cannot share zfs's collection).
        Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(file) & (UnixFileMode)0x1FF);

        // The file is a plain zfs stream: zfs receive itself accepts it.
        var direct = store.GetPool(VolumePool.DefaultName).PoolName + "/data/direct";
        var (code, _, err) = Programs.RunIn(null, null, "sh", "-c", "zfs receive -u \"$0\" < \"$1\"", direct, file);
        Assert.True(code == 0, err);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => transfer.SendToFileAsync(snap.Id, null, file, overwrite: false, cancellationToken: Ct));
        Assert.Equal("VolumeStreamFileExists", e.ErrorId);
        Programs.MustRun("zfs", "destroy", "-r", direct);
    }

    /// <summary>A new volume holding one file of random bytes, and its snapshot.</summary>
    private static async Task<(Volume Source, Volume Snapshot)> SnapshotOfRandomFileAsync(VolumeStore store, string file, int bytes)
    {
        var source = await store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllBytesAsync(Path.Combine(source.Mountpoint, file), RandomBytes(bytes), Ct);
        return (source, await store.CreateSnapshotAsync(source.Id, Ct));
    }

    internal static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        Random.Shared.NextBytes(b);
        return b;
    }

    /// <summary>zfs processes this test process started and that are still alive.</summary>
    private static List<string> ZfsChildren()
    {
        var me = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var list = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[1] == me && stat.Contains("(zfs)", StringComparison.Ordinal) && fields[0] != "Z") list.Add(Path.GetFileName(dir));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }

        return list;
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool, racing the asserts).</summary>
    internal sealed class SyncProgress(Action<TransferProgress> report) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => report(value);
    }
}
