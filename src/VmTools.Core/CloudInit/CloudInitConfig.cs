using System.Security.Cryptography;
using System.Text.RegularExpressions;
using VmTools.Core.Vms;

namespace VmTools.Core.CloudInit;

/// <summary>
/// Everything one VM's first boot needs, checked: identity (hostname, an instance id unique per VM
/// unless given), users, extra write_files/runcmd, the MAC its NIC will have (network-config names
/// the NIC by it), and the optional agent payload. <see cref="NoCloudSeed"/> renders it.
/// </summary>
public sealed partial class CloudInitConfig
{
    private CloudInitConfig(string hostname, string instanceId, AgentPayload? agent, IReadOnlyList<CloudInitUser> users,
        IReadOnlyList<CloudInitWriteFile> writeFiles, IReadOnlyList<string> runCommands, string macAddress)
    {
        Hostname = hostname;
        InstanceId = instanceId;
        Agent = agent;
        Users = users;
        WriteFiles = writeFiles;
        RunCommands = runCommands;
        MacAddress = macAddress;
    }

    public string Hostname { get; }

    public string InstanceId { get; }

    public AgentPayload? Agent { get; }

    public IReadOnlyList<CloudInitUser> Users { get; }

    public IReadOnlyList<CloudInitWriteFile> WriteFiles { get; }

    public IReadOnlyList<string> RunCommands { get; }

    /// <summary>The NIC's MAC: given, or a new one in qemu's 52:54:00 range (unique per seed, like the instance id).</summary>
    public string MacAddress { get; }

    /// <summary>
    /// Builds and validates a config. Agent inputs are all-or-nothing: once an agent config is
    /// known (given, or found in the config directory), certificates and a CA are required, as the
    /// reference scripts required them.
    /// </summary>
    public static CloudInitConfig Create(CloudInitInputs inputs)
    {
        string? Resolve(string? p) => p is null ? null : Path.GetFullPath(p, inputs.BaseDirectory);
        var configDir = Resolve(inputs.ConfigDirectory);
        if (configDir is not null && !Directory.Exists(configDir))
        {
            throw new VmToolsException("CloudInitConfigDirectoryNotFound", FailureKind.NotFound,
                $"The config directory '{configDir}' does not exist (VM_CONFIG_DIR or -ConfigDirectory).") { Target = configDir };
        }

        string? FromDir(string name) => configDir is null ? null : Path.Combine(configDir, name);

        var instanceId = inputs.InstanceId ?? "vmtools-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        if (!IdPattern().IsMatch(instanceId))
        {
            throw new VmToolsException("CloudInitInstanceIdInvalid", FailureKind.InvalidArgument,
                $"The instance id '{instanceId}' must be 1-64 letters, digits, '.', '_' or '-'.") { Target = instanceId };
        }

        var hostname = inputs.Hostname ?? instanceId;
        if (!HostnamePattern().IsMatch(hostname))
        {
            throw new VmToolsException("CloudInitHostnameInvalid", FailureKind.InvalidArgument,
                $"'{hostname}' is not a valid hostname (RFC 1123 labels, at most 63 characters each).") { Target = hostname };
        }

        var mac = inputs.MacAddress is { } given ? MacAddresses.Require(given, "CloudInitMacAddressInvalid", "-MacAddress") : MacAddresses.New();

        foreach (var f in inputs.WriteFiles) f.Validate();
        var duplicateUser = inputs.Users.GroupBy(u => u.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicateUser is not null)
        {
            throw new VmToolsException("CloudInitUserDuplicate", FailureKind.InvalidArgument, $"User '{duplicateUser.Key}' is given twice.") { Target = duplicateUser.Key };
        }

        var agentConfig = Resolve(inputs.AgentConfigFile) ?? ExistingOrNull(FromDir("config.yaml"));
        if (configDir is not null && agentConfig is null)
        {
            throw Missing("CloudInitAgentConfigNotFound", FromDir("config.yaml")!, "the agent config (config.yaml)");
        }

        AgentPayload? agent = null;
        if (agentConfig is not null)
        {
            agent = BuildAgent(inputs, agentConfig, Resolve(inputs.CertificateDirectory) ?? FromDir("certs"), Resolve(inputs.CaCertificateFile) ?? FromDir("ca.pem"),
                inputs.PackageFiles?.Select(p => Resolve(p)!).ToList() ?? PackagesIn(configDir), FromDir("registry.conf"));
        }
        else if (inputs.CertificateDirectory is not null || inputs.CaCertificateFile is not null || inputs.PackageFiles is { Count: > 0 } || inputs.RegistryAddress is not null)
        {
            throw new VmToolsException("CloudInitAgentConfigNotFound", FailureKind.InvalidArgument,
                "Certificates, a CA, packages or a registry were given without an agent config (-AgentConfig or a config directory with config.yaml).");
        }

        return new CloudInitConfig(hostname, instanceId, agent, inputs.Users, inputs.WriteFiles, inputs.RunCommands, mac);
    }

    private static AgentPayload BuildAgent(CloudInitInputs inputs, string configFile, string? certDir, string? caFile, IReadOnlyList<string> packages, string? registryConfFile)
    {
        if (!File.Exists(configFile)) throw Missing("CloudInitAgentConfigNotFound", configFile, "the agent config");
        if (certDir is null || !Directory.Exists(certDir) || !Directory.EnumerateFiles(certDir).Any())
        {
            throw Missing("CloudInitCertificatesNotFound", certDir ?? "(none given)", "a non-empty certificate directory");
        }

        if (caFile is null || !File.Exists(caFile)) throw Missing("CloudInitCaCertificateNotFound", caFile ?? "(none given)", "the CA certificate");
        foreach (var p in packages)
        {
            if (!File.Exists(p)) throw Missing("CloudInitPackageNotFound", p, "a package file");
            if (!(p.EndsWith(".rpm", StringComparison.Ordinal) || p.EndsWith(".deb", StringComparison.Ordinal)))
            {
                throw new VmToolsException("CloudInitPackageTypeInvalid", FailureKind.InvalidArgument, $"'{p}' is neither an .rpm nor a .deb package.") { Target = p };
            }
        }

        string? registry = null;
        if (inputs.RegistryAddress is { } address)
        {
            if (!RegistryAddressPattern().IsMatch(address))
            {
                throw new VmToolsException("CloudInitRegistryAddressInvalid", FailureKind.InvalidArgument,
                    $"'{Registry.UserInfo.Redact(address)}' is not a registry address like 'host:5000' (no scheme, no credentials).") { Target = Registry.UserInfo.Redact(address) };
            }

            registry = RegistriesConf.Render(address, inputs.RegistryInsecure);
        }
        else if (registryConfFile is not null && File.Exists(registryConfFile))
        {
            registry = File.ReadAllText(registryConfFile);
        }

        var service = inputs.AgentServiceName ?? AgentPayload.DefaultServiceName;
        if (!ServiceNamePattern().IsMatch(service))
        {
            throw new VmToolsException("CloudInitServiceNameInvalid", FailureKind.InvalidArgument, $"'{service}' is not a systemd unit name.") { Target = service };
        }

        return new AgentPayload
        {
            ConfigFile = configFile,
            CertificateFiles = Directory.EnumerateFiles(certDir).OrderBy(f => f, StringComparer.Ordinal).ToList(),
            CaCertificateFile = caFile,
            PackageFiles = packages,
            RegistryConfig = registry,
            ServiceName = service,
        };
    }

    /// <summary>Packages from the reference layouts: rpms/ (prepare_vm_config.sh), else packages/ or debs/.</summary>
    private static List<string> PackagesIn(string? configDir)
    {
        if (configDir is null) return new List<string>();
        foreach (var sub in new[] { "rpms", "packages", "debs" })
        {
            var dir = Path.Combine(configDir, sub);
            if (!Directory.Exists(dir)) continue;
            var found = Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".rpm", StringComparison.Ordinal) || f.EndsWith(".deb", StringComparison.Ordinal))
                .OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (found.Count > 0) return found;
        }

        return new List<string>();
    }

    private static string? ExistingOrNull(string? path) => path is not null && File.Exists(path) ? path : null;

    private static VmToolsException Missing(string errorId, string path, string what)
        => new(errorId, FailureKind.NotFound, $"Cannot build the cloud-init config: {what} is missing at '{path}'.") { Target = path };

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex(@"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostnamePattern();

    [GeneratedRegex(@"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._/-]*)?$")]
    private static partial Regex RegistryAddressPattern();

    [GeneratedRegex(@"^[A-Za-z0-9:_.@-]+$")]
    private static partial Regex ServiceNamePattern();
}
