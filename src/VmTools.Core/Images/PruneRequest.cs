namespace VmTools.Core.Images;

/// <summary>
/// Which unused images a prune removes. <see cref="OlderThan"/> and <see cref="KeepLatest"/> both narrow the
/// choice (an image goes when it meets every one given); <see cref="MaxBytes"/> then evicts the least recently
/// used of the rest until the store's images fit. Images a VM record uses are never chosen.
/// </summary>
public sealed record PruneRequest
{
    /// <summary>Only images last used before <see cref="Now"/> minus this.</summary>
    public TimeSpan? OlderThan { get; init; }

    /// <summary>Keep this many most recently used images of every repository (an image kept by any of its repositories stays).</summary>
    public int? KeepLatest { get; init; }

    /// <summary>Evict least recently used images until the stored images take at most this many bytes.</summary>
    public long? MaxBytes { get; init; }

    public DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;

    public bool HasCriterion => OlderThan is not null || KeepLatest is not null || MaxBytes is not null;
}
