using VmTools.Core.Registry;

namespace VmTools.Core.Images;

/// <summary>
/// The cache's defaults from the environment variables users of the reference scripts already set:
/// <c>REGISTRY_CACHE</c> (false/0 → local store only), <c>QCOW2_CACHE_TAG</c> (tag prefix),
/// <c>REGISTRY_OWNER_TESTS</c> (organisation of the default repository).
/// </summary>
public sealed record CacheSettings(bool RegistryEnabled, string TagPrefix, string DefaultRepository)
{
    public const string DefaultTagPrefix = "base-qcow2";
    public const string DefaultOwner = "flightctl-tests";

    public static CacheSettings FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var flag = getEnv("REGISTRY_CACHE")?.Trim().ToLowerInvariant();
        var enabled = flag is not ("false" or "0" or "no" or "off");
        var prefix = getEnv("QCOW2_CACHE_TAG") is { Length: > 0 } p ? p.Trim() : DefaultTagPrefix;
        var owner = getEnv("REGISTRY_OWNER_TESTS") is { Length: > 0 } o ? o.Trim() : DefaultOwner;
        return new CacheSettings(enabled, prefix, $"quay.io/{owner}/flightctl-device-qcow2");
    }

    public string CommitTag(SourceRevision revision) => ImageReference.ValidateTag($"{TagPrefix}-{revision.Commit}");

    public string LatestTag => ImageReference.ValidateTag($"{TagPrefix}-latest");
}
