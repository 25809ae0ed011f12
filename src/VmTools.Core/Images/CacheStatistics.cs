namespace VmTools.Core.Images;

/// <summary>Totals over the cache's event log. A pull counts as a cache hit for the registry (the base was not rebuilt).</summary>
public sealed record CacheStatistics(
    long Hits,
    long Pulls,
    long Misses,
    long Builds,
    long Pushes,
    long BytesDownloaded,
    long BytesUploaded,
    TimeSpan TimePulling,
    TimeSpan TimeBuilding,
    DateTimeOffset? FirstEvent,
    DateTimeOffset? LastEvent)
{
    /// <summary>Images removed from the local store (Remove-Qcow2CacheImage, explicit or by pruning).</summary>
    public long Evictions { get; init; }

    /// <summary>Bytes those removals gave back to the filesystem (blocks of files whose last link went).</summary>
    public long BytesFreed { get; init; }

    /// <summary>Share of lookups that avoided a build: (hits + pulls) / (hits + pulls + misses).</summary>
    public double HitRatio => Hits + Pulls + Misses == 0 ? 0 : (double)(Hits + Pulls) / (Hits + Pulls + Misses);
}
