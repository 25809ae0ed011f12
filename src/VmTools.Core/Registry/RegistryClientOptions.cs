namespace VmTools.Core.Registry;

/// <summary>How to talk to a registry: who we are, how far to trust it, how hard to pull.</summary>
public sealed record RegistryClientOptions
{
    public const long DefaultMaxManifestBytes = 4 * 1024 * 1024;

    /// <summary>Explicit credential; when null, auth.json/config.json are searched.</summary>
    public RegistryCredential? Credential { get; init; }

    /// <summary>Caller names this registry insecure: plain HTTP allowed and TLS not verified. Loopback registries may use HTTP without it.</summary>
    public bool Insecure { get; init; }

    /// <summary>
    /// Lets Basic credentials cross plain HTTP to a non-loopback registry (or its token service) reached with
    /// <see cref="Insecure"/>; without it such a registry's password challenge fails with RegistryCredentialsOverHttp.
    /// </summary>
    public bool AllowCredentialsOverHttp { get; init; }

    /// <summary>
    /// Token realm hosts (as a registry's Bearer challenge names them) that may receive the credential although
    /// they are outside the registry's own domain. Default: VMTOOLS_TRUSTED_TOKEN_REALMS (comma- or space-separated).
    /// </summary>
    public IReadOnlyList<string> TrustedTokenRealms { get; init; } = DefaultTrustedTokenRealms();

    public static IReadOnlyList<string> DefaultTrustedTokenRealms(Func<string, string?>? getEnv = null)
        => ((getEnv ?? Environment.GetEnvironmentVariable)("VMTOOLS_TRUSTED_TOKEN_REALMS") ?? string.Empty)
            .Split(new[] { ',', ' ' }, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Folders laid out like /etc/containers/certs.d: <c>&lt;dir&gt;/&lt;host[:port]&gt;/*.crt</c> are extra trusted CAs for that registry.</summary>
    public IReadOnlyList<string> CertificateDirectories { get; init; } = DefaultCertificateDirectories();

    /// <summary>Concurrent ranged GETs for one blob.</summary>
    public int Parallelism { get; init; } = 4;

    public long ChunkBytes { get; init; } = 32L * 1024 * 1024;

    public long MaxManifestBytes { get; init; } = DefaultMaxManifestBytes;

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(30);

    public Action<string>? Verbose { get; init; }

    public static IReadOnlyList<string> DefaultCertificateDirectories(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var list = new List<string>();
        if (getEnv("VMTOOLS_CERTS_D") is { Length: > 0 } extra) list.AddRange(extra.Split(':', StringSplitOptions.RemoveEmptyEntries));
        var home = getEnv("HOME");
        if (home is { Length: > 0 }) list.Add(Path.Combine(home, ".config", "containers", "certs.d"));
        list.Add("/etc/containers/certs.d");
        list.Add("/etc/docker/certs.d");
        return list;
    }
}
