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

    public static string PidFilePath(FlightVm vm) => Path.Combine(vm.Directory, "qemu.pid");

    public static List<string> Build(FlightVm vm, VmHandles disks, bool kvm)
    {
        var a = new List<string>
        {
            "-name", vm.Name,
            "-accel", kvm ? "kvm" : "tcg",
            "-cpu", kvm ? "host" : "max",
            "-m", vm.MemoryMB.ToString(CultureInfo.InvariantCulture),
            "-smp", vm.CpuCount.ToString(CultureInfo.InvariantCulture),
            "-nodefaults",
            "-display", "none",
            "-serial", "file:" + vm.ConsoleLogPath,
            "-monitor", "none",
            "-qmp", $"unix:{vm.QmpSocketPath},server=on,wait=off",
            "-pidfile", PidFilePath(vm),
            "-daemonize",
        };

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
            a.AddRange(new[] { "-kernel", kernel, "-append", vm.KernelArgs ?? "console=ttyS0" });
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
