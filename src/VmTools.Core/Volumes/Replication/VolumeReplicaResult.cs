namespace VmTools.Core.Volumes.Replication;

/// <summary>What one replication moved to a replica host, and (for Sync-VmVolume) what retention pruned on each side.</summary>
public sealed record VolumeReplicaResult
{
    public required string SnapshotId { get; init; }

    /// <summary>The snapshot's short name, which it keeps on the replica.</summary>
    public required string SnapshotName { get; init; }

    /// <summary>The replica as ssh://[user@]host[:port]/dataset (never with credentials).</summary>
    public required string Destination { get; init; }

    public bool Incremental => FromSnapshot is not null;

    /// <summary>The newest snapshot both sides shared (by zfs guid), which the delta starts from; null for a full stream.</summary>
    public string? FromSnapshot { get; init; }

    public long BytesSent { get; init; }

    public TimeSpan Elapsed { get; init; }

    public double BytesPerSecond => Elapsed.TotalSeconds > 0 ? BytesSent / Elapsed.TotalSeconds : 0;

    /// <summary>True when -Force let zfs receive -F roll the replica back over snapshots the source lacks.</summary>
    public bool ForcedRollback { get; init; }

    public IReadOnlyList<string> PrunedLocal { get; init; } = Array.Empty<string>();

    public IReadOnlyList<string> PrunedRemote { get; init; } = Array.Empty<string>();
}
