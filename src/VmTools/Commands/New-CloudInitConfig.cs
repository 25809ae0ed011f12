using System.Collections;
using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using VmTools.Completers;
using VmTools.Core;
using VmTools.Core.CloudInit;

namespace VmTools.Commands;

/// <summary>
/// Builds a <see cref="CloudInitConfig"/> from parameters and an existing config directory
/// (VM_CONFIG_DIR), and writes the NoCloud seed layout when an output directory is given (or
/// CLOUD_INIT_DIR is set).
/// </summary>
[Cmdlet(VerbsCommon.New, "CloudInitConfig", SupportsShouldProcess = true)]
[OutputType(typeof(CloudInitConfig))]
public sealed class NewCloudInitConfigCommand : VmToolsCmdlet
{
    [Parameter]
    public string? ConfigDirectory { get; set; }

    [Parameter]
    public string? Hostname { get; set; }

    [Parameter]
    public string? InstanceId { get; set; }

    [Parameter]
    public string? AgentConfig { get; set; }

    [Parameter]
    public string? CertificateDirectory { get; set; }

    [Parameter]
    public string[]? Package { get; set; }

    [Parameter]
    public string? CaCertificate { get; set; }

    [Parameter]
    public string? RegistryAddress { get; set; }

    [Parameter]
    public SwitchParameter RegistryInsecure { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(AgentServiceNameCompleter))]
    public string? AgentServiceName { get; set; }

    [Parameter]
    public string? UserName { get; set; }

    [Parameter]
    public string[]? SshAuthorizedKey { get; set; }

    [Parameter]
    public string? PasswordHash { get; set; }

    /// <summary>Set through cloud-init's plain_text_passwd; never written to any stream.</summary>
    [Parameter]
    public SecureString? Password { get; set; }

    /// <summary>Hashtables with Path, Content and optional Permissions/Owner.</summary>
    [Parameter]
    public Hashtable[]? WriteFile { get; set; }

    [Parameter]
    public string[]? RunCommand { get; set; }

    /// <summary>The MAC the VM's NIC will have (network-config matches it); default: a new one. Start-FlightVm takes it from the seed.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MacAddress { get; set; }

    /// <summary>Where to write user-data, meta-data, network-config and the payload folder; default $env:CLOUD_INIT_DIR.</summary>
    [Parameter]
    public string? OutputDirectory { get; set; }

    /// <summary>Writes the seed files into an output directory holding other entries; those entries are kept, only seed files are replaced.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessing()
    {
        var configDir = ConfigDirectory ?? (Environment.GetEnvironmentVariable("VM_CONFIG_DIR") is { Length: > 0 } fromEnv ? fromEnv : null);
        var config = Build(() =>
        {
            var user = CloudInitUser.FromParameters(UserName, SshAuthorizedKey, PasswordHash, Password is null ? null : Plain(Password));
            return CloudInitConfig.Create(new CloudInitInputs
            {
                BaseDirectory = CurrentDirectory,
                ConfigDirectory = configDir is null ? null : ResolvePath(configDir),
                Hostname = Hostname,
                InstanceId = InstanceId,
                AgentConfigFile = AgentConfig is null ? null : ResolvePath(AgentConfig),
                CertificateDirectory = CertificateDirectory is null ? null : ResolvePath(CertificateDirectory),
                PackageFiles = Package?.Select(ResolvePath).ToList(),
                CaCertificateFile = CaCertificate is null ? null : ResolvePath(CaCertificate),
                RegistryAddress = RegistryAddress,
                RegistryInsecure = RegistryInsecure.IsPresent,
                AgentServiceName = AgentServiceName,
                Users = user is null ? Array.Empty<CloudInitUser>() : new[] { user },
                WriteFiles = (WriteFile ?? Array.Empty<Hashtable>()).Select(ToWriteFile).ToList(),
                RunCommands = RunCommand ?? Array.Empty<string>(),
                MacAddress = MacAddress,
            });
        });

        var output = OutputDirectory ?? (Environment.GetEnvironmentVariable("CLOUD_INIT_DIR") is { Length: > 0 } d ? d : null);
        if (output is not null)
        {
            var plan = Build(() => SeedDirectory.Plan(ResolvePath(output), Force.IsPresent));
            if (ShouldProcess(plan.Path, plan.Action))
            {
                var written = Build(() => NoCloudSeed.WriteDirectory(config, plan));
                WriteVerbose($"Wrote {written.Count} files to {plan.Path}.");
            }
        }

        WriteObject(config);
    }

    private T Build<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (VmToolsException e)
        {
            ThrowTerminatingError(ToErrorRecord(e));
            throw;
        }
    }

    private static CloudInitWriteFile ToWriteFile(Hashtable h)
    {
        string? Get(string key) => h.ContainsKey(key) ? h[key]?.ToString() : null;
        var path = Get("Path");
        var content = Get("Content");
        if (path is null || content is null)
        {
            throw new VmToolsException("CloudInitWriteFileInvalid", FailureKind.InvalidArgument, "Each -WriteFile entry needs Path and Content keys.");
        }

        return new CloudInitWriteFile(path, content, Get("Permissions") ?? "0644", Get("Owner") ?? "root:root");
    }

    private static string Plain(SecureString secure)
    {
        var ptr = Marshal.SecureStringToGlobalAllocUnicode(secure);
        try
        {
            return Marshal.PtrToStringUni(ptr) ?? string.Empty;
        }
        finally
        {
            Marshal.ZeroFreeGlobalAllocUnicode(ptr);
        }
    }
}
