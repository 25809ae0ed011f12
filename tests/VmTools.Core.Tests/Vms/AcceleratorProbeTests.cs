using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>
/// The accelerator decision over a fake root (dev/, sys/module/, proc/cpuinfo), one host kind per
/// case: real KVM (Intel, AMD, flags only), PVM-backed KVM, no KVM, and a /dev/kvm that will not open.
/// </summary>
public sealed class AcceleratorProbeTests : IDisposable
{
    private const string IntelFlags = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov vmx sse4_2 avx2";
    private const string PlainFlags = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov sse4_2 avx2 hypervisor";
    private readonly TempDirectory _dir = new("vmtools-accel");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Auto_WithKvmIntelLoaded_PicksKvm()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm", "kvm_intel" }, flags: IntelFlags);
        Assert.Equal(VmAccelerator.Kvm, probe.Auto.Accelerator);
        Assert.Contains("kvm_intel", probe.Auto.Reason);
        Assert.Equal(VmAccelerator.Kvm, probe.Choose(VmAccelerator.Kvm, null).Accelerator);
    }

    [Fact]
    public void Auto_WithKvmAmdLoaded_PicksKvm()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm", "kvm_amd" }, flags: PlainFlags.Replace("sse4_2", "svm sse4_2"));
        Assert.Equal(VmAccelerator.Kvm, probe.Auto.Accelerator);
        Assert.Contains("kvm_amd", probe.Auto.Reason);
    }

    [Fact]
    public void Auto_WithVmxFlagButNoVendorModuleDirectory_PicksKvm()
    {
        // Built-in kvm_intel has no /sys/module entry on every kernel; the CPU flag still says hardware virtualization.
        var probe = Host(kvmDevice: true, modules: new[] { "kvm" }, flags: IntelFlags);
        Assert.Equal(VmAccelerator.Kvm, probe.Auto.Accelerator);
        Assert.Contains("vmx", probe.Auto.Reason);
    }

    [Fact]
    public void Auto_WithOnlyKvmPvm_PicksTcg_AndSaysWhy()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm", "kvm_pvm" }, flags: PlainFlags);
        Assert.Equal(VmAccelerator.Tcg, probe.Auto.Accelerator);
        Assert.Equal("KVM: /dev/kvm is provided by kvm_pvm, which cannot run stock kernels; using TCG", probe.Auto.Reason);
    }

    [Fact]
    public void Auto_WithKvmPvmAndAVmxFlag_StillPicksTcg()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm", "kvm_pvm" }, flags: IntelFlags);
        Assert.Equal(VmAccelerator.Tcg, probe.Auto.Accelerator);
        Assert.Contains("kvm_pvm", probe.Auto.Reason);
    }

    [Fact]
    public void Auto_WithoutDevKvm_PicksTcg()
    {
        var probe = Host(kvmDevice: false, modules: new[] { "kvm", "kvm_intel" }, flags: IntelFlags);
        Assert.Equal(VmAccelerator.Tcg, probe.Auto.Accelerator);
        Assert.Contains("/dev/kvm does not exist", probe.Auto.Reason);
    }

    [Fact]
    public void Auto_WithDevKvmThatDoesNotOpenReadWrite_PicksTcg()
    {
        // Root opens any file it is denied by mode, so "cannot open" is made with a directory: open(O_RDWR) fails with EISDIR.
        var probe = Host(kvmDevice: false, modules: new[] { "kvm", "kvm_intel" }, flags: IntelFlags);
        Directory.CreateDirectory(Path.Combine(probe.Root, "dev", "kvm"));
        Assert.Equal(VmAccelerator.Tcg, probe.Auto.Accelerator);
        Assert.Contains("cannot be opened read-write", probe.Auto.Reason);
    }

    [Fact]
    public void Auto_WithDevKvmButNoHardwareVirtualization_PicksTcg()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm" }, flags: PlainFlags);
        Assert.Equal(VmAccelerator.Tcg, probe.Auto.Accelerator);
        Assert.Contains("no hardware virtualization", probe.Auto.Reason);
    }

    [Fact]
    public void Choose_KvmWhereItCannotRun_IsRefusedWithTheFinding()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm", "kvm_pvm" }, flags: PlainFlags);
        var e = Assert.Throws<VmToolsException>(() => probe.Choose(VmAccelerator.Kvm, null));
        Assert.Equal("VmAcceleratorUnavailable", e.ErrorId);
        Assert.Contains("kvm_pvm", e.Message);
        Assert.Contains("-Accelerator Tcg", e.Message);
        var fromEnv = Assert.Throws<VmToolsException>(() => probe.Choose(null, "KVM"));
        Assert.Contains("VMTOOLS_ACCELERATOR=kvm", fromEnv.Message);
    }

    [Fact]
    public void Choose_HonoursTheEnvironmentSetting_AndAnExplicitRequestWinsOverIt()
    {
        var probe = Host(kvmDevice: true, modules: new[] { "kvm", "kvm_intel" }, flags: IntelFlags);
        Assert.Equal(VmAccelerator.Tcg, probe.Choose(null, "tcg").Accelerator);
        Assert.Contains("VMTOOLS_ACCELERATOR=tcg", probe.Choose(null, " Tcg ").Reason);
        Assert.Equal(VmAccelerator.Kvm, probe.Choose(null, "").Accelerator);
        Assert.Equal(VmAccelerator.Kvm, probe.Choose(null, "auto").Accelerator);
        Assert.Equal(VmAccelerator.Kvm, probe.Choose(VmAccelerator.Auto, "tcg").Accelerator);
        Assert.Equal(VmAccelerator.Tcg, probe.Choose(VmAccelerator.Tcg, "kvm").Accelerator);
    }

    [Theory]
    [InlineData("hvf")]
    [InlineData("1")]
    [InlineData("kvm,tcg")]
    public void Choose_WithAnUnknownEnvironmentSetting_IsRefused(string setting)
    {
        var probe = Host(kvmDevice: false, modules: Array.Empty<string>(), flags: PlainFlags);
        var e = Assert.Throws<VmToolsException>(() => probe.Choose(null, setting));
        Assert.Equal("VmAcceleratorInvalid", e.ErrorId);
    }

    [Fact]
    public void QemuArguments_UseTheHostCpuOnlyUnderKvm_AndTcgKernelDefaultsSkipTheTimerCheck()
    {
        Assert.Equal(new[] { "-accel", "kvm", "-cpu", "host" }, QemuCommandLine.AcceleratorArguments(VmAccelerator.Kvm));
        Assert.Equal(new[] { "-accel", "tcg", "-cpu", "max" }, QemuCommandLine.AcceleratorArguments(VmAccelerator.Tcg));
        Assert.Throws<ArgumentOutOfRangeException>(() => QemuCommandLine.AcceleratorArguments(VmAccelerator.Auto));
        Assert.Contains("no_timer_check", QemuCommandLine.DefaultKernelArgs(VmAccelerator.Tcg));
        Assert.Equal("console=ttyS0", QemuCommandLine.DefaultKernelArgs(VmAccelerator.Kvm));
    }

    [Fact]
    public void ThisHost_ProbeAgreesWithWhatItsKernelShows()
    {
        // The real host's answer, cross-checked against the facts read here by other means.
        var auto = AcceleratorProbe.Host.Auto;
        var hardware = Directory.Exists("/sys/module/kvm_intel") || Directory.Exists("/sys/module/kvm_amd");
        var pvm = Directory.Exists("/sys/module/kvm_pvm");
        var flags = File.ReadLines("/proc/cpuinfo").Where(l => l.StartsWith("flags", StringComparison.Ordinal))
            .SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToHashSet(StringComparer.Ordinal);
        // Every host lands in exactly one branch, so the probe's answer is always checked.
        var expected = !KvmDeviceOpens() || (pvm && !hardware) ? VmAccelerator.Tcg
            : hardware || flags.Contains("vmx") || flags.Contains("svm") ? VmAccelerator.Kvm
            : VmAccelerator.Tcg;
        Assert.Equal(expected, auto.Accelerator);
        TestContext.Current.SendDiagnosticMessage($"This host: {auto.Reason}");
    }

    private static bool KvmDeviceOpens()
    {
        try
        {
            using var kvm = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.None);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private AcceleratorProbe Host(bool kvmDevice, string[] modules, string flags)
    {
        var root = _dir.Combine(Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(root, "dev"));
        Directory.CreateDirectory(Path.Combine(root, "proc"));
        foreach (var m in modules) Directory.CreateDirectory(Path.Combine(root, "sys", "module", m));
        if (kvmDevice) File.WriteAllBytes(Path.Combine(root, "dev", "kvm"), Array.Empty<byte>());
        File.WriteAllText(Path.Combine(root, "proc", "cpuinfo"), $"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n");
        return new AcceleratorProbe(root);
    }
}
