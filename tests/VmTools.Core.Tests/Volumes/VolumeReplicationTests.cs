using VmTools.Core.Host;
using VmTools.Core.Volumes;
using VmTools.Core.Volumes.Replication;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

/// <summary>
/// Replication to a second host: a network namespace with its own sshd (<see cref="SshTestHost"/>)
/// receiving into a second zfs-fuse pool. Every byte goes through the real ssh client, the real sshd
/// and zfs receive on the other side.
/// </summary>
[Collection(ZfsCollection.Name)]
public sealed class VolumeReplicationTests(ZfsFuseDaemon daemon, SshTestHost host) : IClassFixture<SshTestHost>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FirstSendIsFull_AndTheNextCarriesOnlyTheChange()
    {
        using var rig = await Rig.CreateAsync(daemon, host);
        var (source, snap1) = await rig.SnapshotOfRandomFileAsync("alpha", 8 << 20);

        var full = await rig.Replicator.SendAsync(snap1.Id, rig.Remote, force: false, cancellationToken: Ct);
        Assert.False(full.Incremental);
        Assert.True(full.BytesSent > 8 << 20, $"a full stream carries the 8 MiB file; {full.BytesSent} B were sent");
        Assert.Equal(new[] { snap1.SnapshotName }, rig.ReplicaSnapshotNames());
        Assert.Equal(rig.LocalGuid(snap1), rig.ReplicaGuid(snap1.SnapshotName!));

        await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "beta"), "changed", Ct);
        var snap2 = await rig.Store.CreateSnapshotAsync(source.Id, Ct);
        var delta = await rig.Replicator.SendAsync(snap2.Id, rig.Remote, force: false, cancellationToken: Ct);

        Assert.True(delta.Incremental);
        Assert.Equal(snap1.SnapshotName, delta.FromSnapshot);
        Assert.True(delta.BytesSent * 20 < full.BytesSent, $"the delta ({delta.BytesSent} B) should be far smaller than the full stream ({full.BytesSent} B)");
        Assert.Equal(new[] { snap1.SnapshotName, snap2.SnapshotName }, rig.ReplicaSnapshotNames());
        Assert.Equal(rig.LocalGuid(snap2), rig.ReplicaGuid(snap2.SnapshotName!));
        // The replica is never mounted on its host (receive -u): nothing there can touch it before the next delta.
        Assert.Equal("no", Programs.MustRun("zfs", "get", "-H", "-o", "value", "mounted", rig.ReplicaDataset).Trim());
    }

    [Fact]
    public async Task ReplicaRolledBack_IsBroughtForwardFromTheSnapshotItKept()
    {
        using var rig = await Rig.CreateAsync(daemon, host);
        var (source, snap1) = await rig.SnapshotOfRandomFileAsync("alpha", 1 << 20);
        await rig.Replicator.SendAsync(snap1.Id, rig.Remote, false, cancellationToken: Ct);
        var snap2 = await rig.Store.CreateSnapshotAsync(source.Id, Ct);
        await rig.Replicator.SendAsync(snap2.Id, rig.Remote, false, cancellationToken: Ct);
        Programs.MustRun("zfs", "rollback", "-r", rig.ReplicaDataset + "@" + snap1.SnapshotName);

        var snap3 = await rig.Store.CreateSnapshotAsync(source.Id, Ct);
        var result = await rig.Replicator.SendAsync(snap3.Id, rig.Remote, false, cancellationToken: Ct);

        Assert.Equal(snap1.SnapshotName, result.FromSnapshot);
        Assert.Equal(new[] { snap1.SnapshotName, snap3.SnapshotName }, rig.ReplicaSnapshotNames());
    }

    [Fact]
    public async Task ReplicaWithSnapshotsTheSourceLacks_IsDiverged_AndKeptUntilForced()
    {
        using var rig = await Rig.CreateAsync(daemon, host);
        var (source, snap1) = await rig.SnapshotOfRandomFileAsync("alpha", 1 << 20);
        await rig.Replicator.SendAsync(snap1.Id, rig.Remote, false, cancellationToken: Ct);
        Programs.MustRun("zfs", "snapshot", rig.ReplicaDataset + "@made-on-the-replica");
        var snap2 = await rig.Store.CreateSnapshotAsync(source.Id, Ct);

        var e = await Assert.ThrowsAsync<VmToolsException>(() => rig.Replicator.SendAsync(snap2.Id, rig.Remote, force: false, cancellationToken: Ct));
        Assert.Equal("VolumeReplicaDiverged", e.ErrorId);
        Assert.Contains("made-on-the-replica", e.Message);
        Assert.Equal(new[] { snap1.SnapshotName, "made-on-the-replica" }, rig.ReplicaSnapshotNames());

        var forced = await rig.Replicator.SendAsync(snap2.Id, rig.Remote, force: true, cancellationToken: Ct);
        Assert.True(forced.ForcedRollback);
        Assert.Equal(new[] { snap1.SnapshotName, snap2.SnapshotName }, rig.ReplicaSnapshotNames());
    }

    [Fact]
    public async Task CancelledMidStream_LeavesTheReplicaAtItsLastCompleteSnapshot_AndNoReceiverRunning()
    {
        using var rig = await Rig.CreateAsync(daemon, host);
        var (source, snap1) = await rig.SnapshotOfRandomFileAsync("alpha", 1 << 20);
        await rig.Replicator.SendAsync(snap1.Id, rig.Remote, false, cancellationToken: Ct);
        await File.WriteAllBytesAsync(Path.Combine(source.Mountpoint, "big"), VolumeTransferTests.RandomBytes(96 << 20), Ct);
        var snap2 = await rig.Store.CreateSnapshotAsync(source.Id, Ct);

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var progress = new SyncProgress(p => { if (p.BytesDone > 8 << 20) cancel.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rig.Replicator.SendAsync(snap2.Id, rig.Remote, false, progress, cancel.Token));

        Assert.True(progress.Reports > 0, "the transfer was never under way");
        Assert.Equal(new[] { snap1.SnapshotName }, rig.ReplicaSnapshotNames());
        Assert.True(rig.WaitUntilNoReceiverRuns(), "zfs receive still runs on the replica host after the sender was cancelled");
        var again = await rig.Replicator.SendAsync(snap2.Id, rig.Remote, false, cancellationToken: Ct);
        Assert.Equal(snap1.SnapshotName, again.FromSnapshot);
        Assert.Equal(new[] { snap1.SnapshotName, snap2.SnapshotName }, rig.ReplicaSnapshotNames());
    }

    [Fact]
    public async Task ConnectionCutMidStream_FailsAsAConnectionError_AndTheReplicaKeepsItsLastSnapshot()
    {
        using var rig = await Rig.CreateAsync(daemon, host);
        var (source, snap1) = await rig.SnapshotOfRandomFileAsync("alpha", 1 << 20);
        await rig.Replicator.SendAsync(snap1.Id, rig.Remote, false, cancellationToken: Ct);
        await File.WriteAllBytesAsync(Path.Combine(source.Mountpoint, "big"), VolumeTransferTests.RandomBytes(96 << 20), Ct);
        var snap2 = await rig.Store.CreateSnapshotAsync(source.Id, Ct);

        var cut = 0;
        var progress = new SyncProgress(p => { if (p.BytesDone > 8 << 20 && Interlocked.Exchange(ref cut, 1) == 0) host.KillSshdAndSessions(); });
        try
        {
            var e = await Assert.ThrowsAsync<VmToolsException>(() => rig.Replicator.SendAsync(snap2.Id, rig.Remote, false, progress, Ct));
            Assert.Equal(1, cut);
            Assert.True(e.ErrorId == "VolumeSshConnectionFailed", $"{e.ErrorId}: {e.Message}");
        }
        finally
        {
            host.StartSshd();
        }

        Assert.Equal(new[] { snap1.SnapshotName }, rig.ReplicaSnapshotNames());
    }

    [Fact]
    public async Task Sync_SnapshotsSendsAndKeepsTheNewestOnBothSides()
    {
        using var rig = await Rig.CreateAsync(daemon, host);
        var source = await rig.Store.CreateVolumeAsync(new VolumeRequest(), Ct);
        await File.WriteAllBytesAsync(Path.Combine(source.Mountpoint, "alpha"), VolumeTransferTests.RandomBytes(1 << 20), Ct);

        var first = await rig.Replicator.SyncAsync(source.Id, rig.Remote, false, keepLast: 2, cancellationToken: Ct);
        await File.WriteAllTextAsync(Path.Combine(source.Mountpoint, "beta"), "changed", Ct);
        var second = await rig.Replicator.SyncAsync(source.Id, rig.Remote, false, keepLast: 2, cancellationToken: Ct);
        var third = await rig.Replicator.SyncAsync(source.Id, rig.Remote, false, keepLast: 2, cancellationToken: Ct);

        Assert.False(first.Incremental);
        Assert.True(second.Incremental);
        Assert.Equal(first.SnapshotName, second.FromSnapshot);
        Assert.Equal(second.SnapshotName, third.FromSnapshot);
        Assert.Empty(second.PrunedLocal);
        Assert.Equal(new[] { first.SnapshotName }, third.PrunedLocal);
        Assert.Equal(new[] { first.SnapshotName }, third.PrunedRemote);
        var kept = rig.Store.SnapshotsOf(source.Id).Select(s => s.SnapshotName).ToList();
        Assert.Equal(new[] { second.SnapshotName, third.SnapshotName }, kept);
        Assert.Equal(kept, rig.ReplicaSnapshotNames());
    }

    [Fact]
    public async Task NothingListening_IsAConnectionFailure()
    {
        host.Require();
        var remote = Connect(host.Destination("tank/replica", port: SshTestHost.Port + 1), new SshOptions { IdentityFile = host.IdentityFile, KnownHostsFile = host.KnownHostsFile });
        var e = await Assert.ThrowsAsync<VmToolsException>(() => remote.ListSnapshotsAsync(Ct));
        Assert.Equal("VolumeSshConnectionFailed", e.ErrorId);
        Assert.Contains("refused", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ChangedHostKey_IsAMismatch_ThatNamesNoKey_AndAnUnknownHostIsRefusedToo()
    {
        host.Require();
        var options = new SshOptions { IdentityFile = host.IdentityFile, KnownHostsFile = host.KnownHostsFile };
        var recorded = await File.ReadAllTextAsync(host.KnownHostsFile, Ct);
        try
        {
            host.ChangeHostKey(recordInKnownHosts: false);
            var e = await Assert.ThrowsAsync<VmToolsException>(() => Connect(host.Destination("tank/replica"), options).ListSnapshotsAsync(Ct));
            Assert.Equal("VolumeSshHostKeyMismatch", e.ErrorId);
            Assert.DoesNotContain("SHA256:", e.Message);
            Assert.DoesNotContain(recorded.Split(' ')[2].Trim(), e.Message);

            var empty = Path.Combine(host.Directory, "empty_known_hosts");
            await File.WriteAllTextAsync(empty, string.Empty, Ct);
            e = await Assert.ThrowsAsync<VmToolsException>(() => Connect(host.Destination("tank/replica"), options with { KnownHostsFile = empty }).ListSnapshotsAsync(Ct));
            Assert.Equal("VolumeSshHostKeyUnknown", e.ErrorId);

            // The explicit opt-out connects to whatever key the host has now (the dataset is absent: null, not an error).
            Assert.Null(await Connect(host.Destination("vmtt-absent/replica"), options with { SkipHostKeyCheck = true }).ListSnapshotsAsync(Ct));
        }
        finally
        {
            host.ChangeHostKey(recordInKnownHosts: true);
        }
    }

    [Fact]
    public async Task KeyTheHostDoesNotAccept_IsAnAuthenticationFailure()
    {
        host.Require();
        var other = Path.Combine(host.Directory, "stranger_ed25519");
        if (!File.Exists(other)) Programs.MustRun("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other);
        var remote = Connect(host.Destination("tank/replica"), new SshOptions { IdentityFile = other, KnownHostsFile = host.KnownHostsFile });
        var e = await Assert.ThrowsAsync<VmToolsException>(() => remote.ListSnapshotsAsync(Ct));
        Assert.Equal("VolumeSshAuthFailed", e.ErrorId);
    }

    private static RemoteZfs Connect(string destination, SshOptions options) => new(new SshTransport(ReplicaDestination.Parse(destination), options), ProcessRunner.Instance);

    /// <summary>Progress reported inline (Progress&lt;T&gt; would post to the thread pool, after the fact).</summary>
    private sealed class SyncProgress(Action<TransferProgress> onReport) : IProgress<TransferProgress>
    {
        public int Reports;

        public void Report(TransferProgress value)
        {
            Interlocked.Increment(ref Reports);
            onReport(value);
        }
    }

    /// <summary>A local store with one pool, a second pool standing for the other host's, and the replicator between them.</summary>
    private sealed class Rig : IDisposable
    {
        private readonly VolumeSandbox _box;
        private readonly SshTestHost _host;

        private Rig(VolumeSandbox box, SshTestHost host, VolumeStore store, string replicaPool)
        {
            _box = box;
            _host = host;
            Store = store;
            ReplicaDataset = replicaPool + "/replica";
            Replicator = new VolumeReplicator(store, ProcessRunner.Instance);
            Remote = Replicator.Connect(ReplicaDestination.Parse(host.Destination(ReplicaDataset)), new SshOptions { IdentityFile = host.IdentityFile, KnownHostsFile = host.KnownHostsFile });
        }

        public VolumeStore Store { get; }

        public VolumeReplicator Replicator { get; }

        public RemoteZfs Remote { get; }

        public string ReplicaDataset { get; }

        public static async Task<Rig> CreateAsync(ZfsFuseDaemon daemon, SshTestHost host)
        {
            host.Require();
            var box = new VolumeSandbox(daemon);
            try
            {
                var store = await box.NewStoreAsync();
                // The other host's pool: registered with the sandbox so it is destroyed with it.
                var pool = box.NewPool("replica-host");
                Directory.CreateDirectory(Path.GetDirectoryName(pool.VdevPath)!);
                await using (var vdev = File.Create(pool.VdevPath)) vdev.SetLength(VolumeSandbox.PoolSize);
                Programs.MustRun("zpool", "create", "-m", box.Combine("replica-host-mnt"), pool.PoolName, pool.VdevPath);
                return new Rig(box, host, store, pool.PoolName);
            }
            catch
            {
                box.Dispose();
                throw;
            }
        }

        public async Task<(Volume Source, Volume Snapshot)> SnapshotOfRandomFileAsync(string file, int bytes)
        {
            var source = await Store.CreateVolumeAsync(new VolumeRequest(), Ct);
            await File.WriteAllBytesAsync(Path.Combine(source.Mountpoint, file), VolumeTransferTests.RandomBytes(bytes), Ct);
            return (source, await Store.CreateSnapshotAsync(source.Id, Ct));
        }

        /// <summary>The replica's snapshots oldest first, read with zfs directly (not through the code under test).</summary>
        public string[] ReplicaSnapshotNames()
        {
            var (code, stdout, stderr) = Programs.Run("zfs", "get", "-H", "-p", "-r", "-o", "name,value", "createtxg", ReplicaDataset);
            Assert.True(code == 0, stderr);
            return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split('\t'))
                .Where(p => p[0].StartsWith(ReplicaDataset + "@", StringComparison.Ordinal))
                .OrderBy(p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture))
                .Select(p => p[0][(p[0].IndexOf('@') + 1)..])
                .ToArray();
        }

        public string ReplicaGuid(string snapshotName) => Guid(ReplicaDataset + "@" + snapshotName);

        public string LocalGuid(Volume snapshot) => Guid(snapshot.Dataset);

        /// <summary>Whether, within a few seconds, no process in the replica host's namespace is a zfs receive.</summary>
        public bool WaitUntilNoReceiverRuns()
        {
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (DateTime.UtcNow < deadline)
            {
                var (_, pids, _) = Programs.Run("ip", "netns", "pids", _host.Namespace);
                var receiving = pids.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Any(p =>
                {
                    try { return File.ReadAllText($"/proc/{p}/cmdline").Replace('\0', ' ').Contains("receive", StringComparison.Ordinal); }
                    catch (IOException) { return false; }
                });
                if (!receiving) return true;
                Thread.Sleep(200);
            }

            return false;
        }

        private static string Guid(string snapshot) => Programs.MustRun("zfs", "get", "-H", "-p", "-o", "value", "guid", snapshot).Trim();

        public void Dispose() => _box.Dispose();
    }
}
