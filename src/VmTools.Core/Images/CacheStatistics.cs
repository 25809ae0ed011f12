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
    /// <summary>Share of lookups that avoided a build: (hits + pulls) / (hits + pulls + misses).</summary>
    public double HitRatio => Hits + Pulls + Misses == 0 ? 0 : (double)(Hits + Pulls) / (Hits + Pulls + Misses);
}
