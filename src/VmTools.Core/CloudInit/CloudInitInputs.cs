namespace VmTools.Core.CloudInit;

/// <summary>
/// Raw inputs for a <see cref="CloudInitConfig"/>, as a user gives them (paths may be relative to
/// <see cref="BaseDirectory"/>). Anything left null comes from <see cref="ConfigDirectory"/> when set.
/// </summary>
public sealed record CloudInitInputs
{
    public string BaseDirectory { get; init; } = Environment.CurrentDirectory;

    /// <summary>An existing config directory (VM_CONFIG_DIR layout): config.yaml, certs/, rpms/ or packages/, ca.pem, registry.conf.</summary>
    public string? ConfigDirectory { get; init; }

    public string? Hostname { get; init; }

    public string? InstanceId { get; init; }

    public string? AgentConfigFile { get; init; }

    public string? CertificateDirectory { get; init; }

    public IReadOnlyList<string>? PackageFiles { get; init; }

    public string? CaCertificateFile { get; init; }

    public string? RegistryAddress { get; init; }

    public bool RegistryInsecure { get; init; }

    public string? AgentServiceName { get; init; }

    public IReadOnlyList<CloudInitUser> Users { get; init; } = Array.Empty<CloudInitUser>();

    public IReadOnlyList<CloudInitWriteFile> WriteFiles { get; init; } = Array.Empty<CloudInitWriteFile>();

    public IReadOnlyList<string> RunCommands { get; init; } = Array.Empty<string>();

    /// <summary>The MAC the VM's NIC will have; null: a new one.</summary>
    public string? MacAddress { get; init; }
}
