namespace VmTools.Core.CloudInit;

/// <summary>
/// What the guest-side setup script installs: the agent's config, its certificates, packages, the
/// CA to trust and the container registry settings. Travels on the seed image in
/// <see cref="NoCloudSeed.PayloadDirectory"/>.
/// </summary>
public sealed record AgentPayload
{
    public const string DefaultServiceName = "flightctl-agent";

    public required string ConfigFile { get; init; }

    public required IReadOnlyList<string> CertificateFiles { get; init; }

    public required string CaCertificateFile { get; init; }

    /// <summary>.rpm or .deb files, installed with the guest's own package manager.</summary>
    public IReadOnlyList<string> PackageFiles { get; init; } = Array.Empty<string>();

    /// <summary>registries.conf text (a <c>[[registry]]</c> table); null when no registry was given.</summary>
    public string? RegistryConfig { get; init; }

    public string ServiceName { get; init; } = DefaultServiceName;
}
