using System.Diagnostics;
using VmTools.Core.Host;

namespace VmTools.Core.Volumes.Replication;

/// <summary>
/// Keeps a copy of a volume's snapshots on another host's zfs pool, over ssh: the replica's
/// snapshots are listed first, the stream is incremental from the newest snapshot both sides share
/// (matched by guid), and <c>zfs send | ssh host zfs receive -u</c> runs with the same splice pipe and
/// send hold as a local transfer. A replica that moved on by itself (snapshots the source lacks after
/// the shared one) is reported as diverged and left alone unless forced.
/// </summary>
public sealed class VolumeReplicator
{
    private readonly VolumeStore _store;
    private readonly VolumeTransfer _transfer;
    private readonly ICommandRunner _runner;

    public VolumeReplicator(VolumeStore store, ICommandRunner runner)
    {
        _store = store;
        _runner = runner;
        _transfer = new VolumeTransfer(store);
    }

    public RemoteZfs Connect(ReplicaDestination destination, SshOptions options) => new(new SshTransport(destination, options), _runner);

    /// <summary>Sends <paramref name="snapshotId"/> to the replica: full when the replica does not exist yet, else the delta from the shared snapshot.</summary>
    public async Task<VolumeReplicaResult> SendAsync(string snapshotId, RemoteZfs remote, bool force, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        // The replica's snapshots (an ssh round trip) are listed while the local ones are read.
        var listing = remote.ListSnapshotsAsync(cancellationToken);
        var plan = await _transfer.PlanAsync(snapshotId, HavesOf(listing), cancellationToken).ConfigureAwait(false);
        var remoteSnapshots = await listing.ConfigureAwait(false);
        var divergence = remoteSnapshots is null ? null : Divergence(plan, remoteSnapshots);
        if (divergence is { } why)
        {
            if (!force || (plan.FromSnapshot is null && remoteSnapshots!.Count > 0))
            {
                throw remote.Diverged(why + (force ? " zfs cannot receive a full stream over a dataset with snapshots even with -F: replicate to a new dataset, or destroy the replica first." : string.Empty));
            }

            // zfs receive -F alone rolls back only to the replica's newest snapshot (and zfs-fuse then applies
            // the delta on top of it); the snapshots beyond the shared one are removed explicitly first.
            if (plan.FromSnapshot is { } shared) await remote.RollbackAsync(shared.ShortName, cancellationToken).ConfigureAwait(false);
        }

        var clock = Stopwatch.StartNew();
        var bytes = await _transfer.PipeAsync(plan, (produce, ct) => remote.ReceiveAsync(force, produce, ct), "Replicating volume snapshot", progress, cancellationToken)
            .ConfigureAwait(false);
        var elapsed = clock.Elapsed;

        // zfs receive exits 0 only once the snapshot is committed on the replica: no second round trip to check.
        return new VolumeReplicaResult
        {
            SnapshotId = plan.Snapshot.Id,
            SnapshotName = plan.Self.ShortName,
            Destination = remote.Ssh.Destination.ToString(),
            FromSnapshot = plan.FromSnapshot?.ShortName,
            BytesSent = bytes,
            Elapsed = elapsed,
            ForcedRollback = divergence is not null,
        };
    }

    /// <summary>
    /// Brings the replica up to date: snapshots the volume now, sends what the replica lacks, then
    /// (with <paramref name="keepLast"/>) keeps only the newest N snapshots on each side. The newest
    /// snapshot is always kept on both, so the next sync is incremental again.
    /// </summary>
    public async Task<VolumeReplicaResult> SyncAsync(string volumeId, RemoteZfs remote, bool force, int? keepLast, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (keepLast is < 1)
        {
            throw new VmToolsException("VolumeKeepLastInvalid", FailureKind.InvalidArgument, "-KeepLast must be at least 1: the newest snapshot is the base of the next incremental.") { Target = keepLast.ToString() };
        }

        var volume = _store.RequireAvailable(_store.GetVolume(volumeId));
        if (volume.IsSnapshot)
        {
            throw new VmToolsException("VolumeIsASnapshot", FailureKind.InvalidArgument, $"'{volume.Id}' is a snapshot; sync a volume (or send this snapshot with Send-VmVolumeSnapshot -Destination).") { Target = volume.Id };
        }

        // The replica is checked before anything is created here: an unreachable host leaves no new snapshot behind.
        _ = await remote.ListSnapshotsAsync(cancellationToken).ConfigureAwait(false);
        var snapshot = await _store.CreateSnapshotAsync(volume.Id, cancellationToken).ConfigureAwait(false);
        var result = await SendAsync(snapshot.Id, remote, force, progress, cancellationToken).ConfigureAwait(false);
        if (keepLast is not { } keep) return result;

        var prunedLocal = new List<string>();
        var local = _store.SnapshotsOf(volume.Id);
        foreach (var old in local.Take(Math.Max(0, local.Count - keep)))
        {
            try
            {
                await _store.RemoveAsync(old.Id, recurse: false, cancellationToken).ConfigureAwait(false);
                prunedLocal.Add(old.SnapshotName!);
            }
            catch (VmToolsException e) when (e.ErrorId == "VolumeHasDependentClones")
            {
                // A snapshot a clone was made from stays; retention never removes a volume's origin.
            }
        }

        var prunedRemote = new List<string>();
        var remoteSnapshots = await remote.ListSnapshotsAsync(cancellationToken).ConfigureAwait(false) ?? Array.Empty<ZfsSnapshot>();
        foreach (var old in remoteSnapshots.Take(Math.Max(0, remoteSnapshots.Count - keep)))
        {
            await remote.DestroySnapshotAsync(old.ShortName, cancellationToken).ConfigureAwait(false);
            prunedRemote.Add(old.ShortName);
        }

        return result with { PrunedLocal = prunedLocal, PrunedRemote = prunedRemote };
    }

    private static async Task<IReadOnlyList<VolumeHave>> HavesOf(Task<IReadOnlyList<ZfsSnapshot>?> listing)
        => (await listing.ConfigureAwait(false))?.Select(s => new VolumeHave(s.ShortName, s.Guid, s.CreateTxg)).ToList() ?? new List<VolumeHave>();

    /// <summary>Why the replica cannot take the planned stream as is, or null when it can.</summary>
    private static string? Divergence(VolumeTransfer.TransferPlan plan, IReadOnlyList<ZfsSnapshot> remote)
    {
        if (plan.FromSnapshot is null)
        {
            return remote.Count == 0
                ? "the dataset exists but holds no snapshot, so a full stream would overwrite it."
                : $"it has {remote.Count} snapshot(s) and shares none with the source.";
        }

        var common = remote.First(s => s.Guid == plan.FromSnapshot.Guid);
        var beyond = remote.Where(s => s.CreateTxg > common.CreateTxg).Select(s => s.ShortName).ToList();
        return beyond.Count == 0 ? null
            : $"after the newest shared snapshot '{common.ShortName}' it has {string.Join(", ", beyond.Select(b => "'" + b + "'"))}, which the source does not.";
    }
}
