namespace VmTools.Core.Volumes;

/// <summary>What a send moved: the snapshot, where it went, whether it was incremental and how fast.</summary>
public sealed record VolumeSendResult
{
    public required string SnapshotId { get; init; }

    public required string Snapshot { get; init; }

    /// <summary>The stream file, or null when the stream went to a caller's stream.</summary>
    public string? Path { get; init; }

    public bool Incremental => FromSnapshot is not null;

    /// <summary>The shared snapshot the delta starts from (zfs send -i), null for a full stream.</summary>
    public string? FromSnapshot { get; init; }

    public long BytesSent { get; init; }

    public TimeSpan Elapsed { get; init; }

    public double BytesPerSecond => Elapsed.TotalSeconds > 0 ? BytesSent / Elapsed.TotalSeconds : 0;
}
