using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>
/// A hosted PowerShell session with its own VMTOOLS_HOME, a base image, and teardown that kills every
/// qemu and deletes every tap this session's state directory created.
/// </summary>
public sealed class VmSession : IDisposable
{
    private readonly TempDirectory _home = new("vmtools-vmps");

    public VmSession()
    {
        Ps = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = _home.Path });
        BaseImage = FlightVmGuest.CreateBase(_home.Path);
    }

    public PowerShellHost Ps { get; }

    public string Home => _home.Path;

    public string BaseImage { get; }

    /// <summary>Splat for Start-FlightVm that boots the test guest.</summary>
    public Dictionary<string, object> GuestParameters(string name) => new()
    {
        ["ImagePath"] = BaseImage, ["Name"] = name, ["Kernel"] = FlightVmGuest.Kernel, ["Initrd"] = FlightVmGuest.Initrd,
        ["KernelArgs"] = FlightVmGuest.KernelArgs, ["MemoryMB"] = 96,
    };

    public string ExpectErrorOf(string script, params object?[] args) => Ps.ExpectError(script, args).FullyQualifiedErrorId;

    public void Dispose()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => int.TryParse(n, out _)))
        {
            try
            {
                var cmd = File.ReadAllText($"/proc/{dir}/cmdline").Replace('\0', ' ');
                if (cmd.Contains("-qmp unix:" + _home.Path, StringComparison.Ordinal)) Programs.Run("kill", "-9", dir!);
            }
            catch (IOException)
            {
            }
        }

        Ps.Dispose();
        Thread.Sleep(200);
        _home.Dispose();
    }
}
