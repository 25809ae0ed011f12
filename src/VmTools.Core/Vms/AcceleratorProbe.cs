using Microsoft.Win32.SafeHandles;

namespace VmTools.Core.Vms;

/// <summary>
/// Decides whether KVM can run a stock guest here, without booting one. "/dev/kvm exists" is the
/// wrong question: a /dev/kvm backed by kvm_pvm (pagetable-based virtualization) only runs
/// PVM-enabled kernels, and a stock kernel under it prints nothing, ever, while qemu burns a core.
/// KVM counts as usable when /dev/kvm opens read-write and the host offers hardware
/// virtualization (kvm_intel or kvm_amd loaded, or vmx/svm among the CPU flags).
/// </summary>
/// <remarks>
/// Every path is read beneath <see cref="Root"/>, so tests point the probe at a fake sysfs/procfs.
/// The host's answer is computed once per process (<see cref="Host"/>): it reads a few small files.
/// </remarks>
public sealed class AcceleratorProbe
{
    /// <summary>Overrides Auto for a whole CI step: <c>auto</c>, <c>kvm</c> or <c>tcg</c>.</summary>
    public const string EnvironmentVariable = "VMTOOLS_ACCELERATOR";

    private static readonly Lazy<AcceleratorProbe> HostProbe = new(() => new AcceleratorProbe("/"));
    private readonly Lazy<(bool KvmUsable, string Finding)> _finding;

    public AcceleratorProbe(string root)
    {
        Root = root;
        _finding = new Lazy<(bool, string)>(Assess);
    }

    /// <summary>The probe of this host, evaluated at most once per process.</summary>
    public static AcceleratorProbe Host => HostProbe.Value;

    public string Root { get; }

    /// <summary>What Auto picks here, with the reason.</summary>
    public AcceleratorChoice Auto => _finding.Value.KvmUsable
        ? new(VmAccelerator.Kvm, _finding.Value.Finding + "; using KVM")
        : new(VmAccelerator.Tcg, _finding.Value.Finding + "; using TCG");

    /// <summary>
    /// Turns a request into what qemu will run with. <paramref name="requested"/> null means the
    /// <see cref="EnvironmentVariable"/> setting, else Auto. Kvm asked for where it cannot run a
    /// stock guest is refused (<c>VmAcceleratorUnavailable</c>) rather than left to hang silently.
    /// </summary>
    public AcceleratorChoice Choose(VmAccelerator? requested)
        => Choose(requested, Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary><see cref="Choose(VmAccelerator?)"/> with the environment setting given (tests, and hosts that carry their own).</summary>
    public AcceleratorChoice Choose(VmAccelerator? requested, string? environmentSetting)
    {
        var wanted = requested ?? Parse(environmentSetting);
        switch (wanted)
        {
            case VmAccelerator.Tcg:
                return new AcceleratorChoice(VmAccelerator.Tcg, requested is null ? $"TCG: {EnvironmentVariable}=tcg" : "TCG: asked for");
            case VmAccelerator.Kvm when _finding.Value.KvmUsable:
                return Auto;
            case VmAccelerator.Kvm:
                throw new VmToolsException("VmAcceleratorUnavailable", FailureKind.ResourceUnavailable,
                    $"KVM was asked for{(requested is null ? $" ({EnvironmentVariable}=kvm)" : string.Empty)} but cannot run a stock guest here ({_finding.Value.Finding}). Use -Accelerator Tcg or Auto.")
                { Target = VmAccelerator.Kvm };
            default:
                return Auto;
        }
    }

    /// <summary>An <see cref="EnvironmentVariable"/> setting: unset or empty is Auto, anything unknown is refused.</summary>
    public static VmAccelerator Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return VmAccelerator.Auto;
        foreach (var a in Enum.GetValues<VmAccelerator>())
        {
            if (string.Equals(a.ToString(), value.Trim(), StringComparison.OrdinalIgnoreCase)) return a;
        }

        throw new VmToolsException("VmAcceleratorInvalid", FailureKind.InvalidArgument,
            $"{EnvironmentVariable}='{value}' is not an accelerator; use auto, kvm or tcg.") { Target = value };
    }

    private (bool KvmUsable, string Finding) Assess()
    {
        var device = Under("dev/kvm");
        if (!File.Exists(device) && !Directory.Exists(device)) return (false, "KVM: /dev/kvm does not exist");
        if (OpenError(device) is { } why) return (false, $"KVM: /dev/kvm cannot be opened read-write ({why})");

        var vendor = new[] { "kvm_intel", "kvm_amd" }.FirstOrDefault(m => Directory.Exists(Under("sys/module/" + m)));
        if (vendor is not null) return (true, $"KVM: /dev/kvm opens and {vendor} is loaded");

        // kvm_pvm is checked before the CPU flags: a PVM host may still list vmx/svm, but its
        // /dev/kvm is PVM's, which cannot run a stock kernel.
        if (Directory.Exists(Under("sys/module/kvm_pvm"))) return (false, "KVM: /dev/kvm is provided by kvm_pvm, which cannot run stock kernels");

        var flag = CpuFlags().FirstOrDefault(f => f is "vmx" or "svm");
        if (flag is not null) return (true, $"KVM: /dev/kvm opens and the CPU offers {flag}");
        return (false, "KVM: the host offers no hardware virtualization (no kvm_intel or kvm_amd module, no vmx or svm CPU flag)");
    }

    private string Under(string relative) => Path.Combine(Root, relative);

    private static string? OpenError(string path)
    {
        try
        {
            using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    private IEnumerable<string> CpuFlags()
    {
        string[] lines;
        try { lines = File.ReadAllLines(Under("proc/cpuinfo")); }
        catch (IOException) { return Array.Empty<string>(); }
        catch (UnauthorizedAccessException) { return Array.Empty<string>(); }

        return lines.Where(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Contains(':'))
            .SelectMany(l => l[(l.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Distinct(StringComparer.Ordinal);
    }
}
