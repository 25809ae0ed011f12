using System.Globalization;

namespace VmTools.Core.Vms;

/// <summary>
/// The qemu argv for a VM. <c>-daemonize</c> makes qemu its own session leader, detached from the
/// caller: the VM outlives the pwsh process that started it, and qemu's parent only returns once
/// the VM is set up (QMP socket listening), reporting setup errors on stderr.
/// </summary>
public static class QemuCommandLine
{
    public const string Program = "qemu-system-x86_64";

    /// <summary>
    /// Kernel arguments that keep a guest booting on a slow or busy host. Under TCG on a loaded
    /// machine the kernel's IO-APIC timer check (check_timer) can miss the PIT interrupt it waits
    /// for: it prints "MP-BIOS bug: 8254 timer not connected", then panics with "IO-APIC + timer
    /// doesn't work!", and with panic=-1 and -no-reboot qemu exits 0 before the guest was ever
    /// ready. no_timer_check skips that check (libguestfs passes it to every appliance).
    /// </summary>
    public const string SlowHostKernelArgs = "no_timer_check";

    public static string PidFilePath(FlightVm vm) => Path.Combine(vm.Directory, "qemu.pid");

    /// <summary>The kernel command line when the user gives none: the serial console, and under TCG <see cref="SlowHostKernelArgs"/>.</summary>
    public static string DefaultKernelArgs(VmAccelerator accelerator)
        => accelerator == VmAccelerator.Kvm ? "console=ttyS0" : "console=ttyS0 " + SlowHostKernelArgs;

    /// <summary>qemu's accelerator and CPU model: the host's CPU only under KVM; TCG emulates the richest model it has (ext4 needs SSE4.2).</summary>
    public static string[] AcceleratorArguments(VmAccelerator accelerator) => accelerator switch
    {
        VmAccelerator.Kvm => new[] { "-accel", "kvm", "-cpu", "host" },
        VmAccelerator.Tcg => new[] { "-accel", "tcg", "-cpu", "max" },
        _ => throw new ArgumentOutOfRangeException(nameof(accelerator), accelerator, "Auto is resolved by AcceleratorProbe before qemu is started."),
    };

    public static List<string> Build(FlightVm vm, VmHandles disks)
    {
        var accelerator = vm.Accelerator ?? throw new InvalidOperationException($"VM '{vm.Name}' has no accelerator recorded.");
        var a = new List<string> { "-name", vm.Name };
        a.AddRange(AcceleratorArguments(accelerator));
        a.AddRange(new[]
        {
            "-m", vm.MemoryMB.ToString(CultureInfo.InvariantCulture),
            "-smp", vm.CpuCount.ToString(CultureInfo.InvariantCulture),
            "-nodefaults",
            "-display", "none",
            "-serial", "file:" + vm.ConsoleLogPath,
            "-monitor", "none",
            "-qmp", $"unix:{vm.QmpSocketPath},server=on,wait=off",
            "-pidfile", PidFilePath(vm),
            "-daemonize",
        });

        if (vm.DiskMode == VmDiskMode.Overlay)
        {
            a.AddRange(new[] { "-drive", $"file={Escape(vm.OverlayPath)},if=virtio,format=qcow2" });
        }
        else
        {
            a.AddRange(new[] { "-drive", $"file={Escape(disks.DmDevice!)},if=virtio,format=raw,cache=none" });
        }

        foreach (var volume in vm.VolumePaths)
        {
            a.AddRange(new[] { "-drive", $"file={Escape(volume)},if=virtio,format={DiskFormat.Detect(volume)}" });
        }

        if (vm.CloudInitPath is { } iso)
        {
            a.AddRange(new[] { "-drive", $"file={Escape(iso)},media=cdrom,readonly=on" });
        }

        if (vm.KernelPath is { } kernel)
        {
            a.AddRange(new[] { "-kernel", kernel, "-append", vm.KernelArgs ?? DefaultKernelArgs(accelerator) });
            if (vm.InitrdPath is { } initrd) a.AddRange(new[] { "-initrd", initrd });
        }

        switch (vm.Network)
        {
            case VmNetworkMode.User:
                a.AddRange(new[] { "-netdev", $"user,id=n0,hostfwd=tcp:127.0.0.1:{vm.SshPort}-:22", "-device", $"virtio-net-pci,netdev=n0,mac={vm.MacAddress}" });
                break;
            case VmNetworkMode.Tap:
                a.AddRange(new[] { "-netdev", $"tap,id=n0,ifname={vm.TapName},script=no,downscript=no", "-device", $"virtio-net-pci,netdev=n0,mac={vm.MacAddress}" });
                break;
        }

        return a;
    }

    /// <summary>qemu option values separate on ','; a literal comma is written twice.</summary>
    private static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
