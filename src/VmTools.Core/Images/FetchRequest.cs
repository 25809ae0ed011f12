using VmTools.Core.Registry;

namespace VmTools.Core.Images;

/// <summary>What to look for: a repository and the tags to try in order (commit tag, then latest).</summary>
public sealed record FetchRequest(ImageReference Repository, IReadOnlyList<string> Tags)
{
    public OciPlatform Platform { get; init; } = OciPlatform.Current;

    public bool RegistryEnabled { get; init; } = true;

    public RegistryClientOptions ClientOptions { get; init; } = new();

    /// <summary>
    /// A pin: fetch this manifest digest instead of the tags. A verified local copy known for it is a hit with no
    /// registry request; what the registry serves must hash to it.
    /// </summary>
    public string? ManifestDigest { get; init; }

    /// <summary>When false, a needed download is not made: the answer is a <see cref="CacheStatus.WouldPull"/> entry (manifests are still read).</summary>
    public bool PullAllowed { get; init; } = true;
}
