namespace VmTools.TestSupport;

/// <summary>
/// The guest the VM tests boot: busybox init that mounts /dev, loads virtio (disk) and the ACPI power
/// button, writes a line to /dev/vda when a disk is attached, prints <see cref="ReadyMarker"/>, then idles.
/// A power-button press (QMP system_powerdown) makes it power off, so graceful stop is real. Built
/// once per test process from <see cref="TestGuest"/>. <see cref="DhcpInitrd"/> adds the network: it asks
/// DHCP for eth0's address, prints <see cref="IpMarker"/> and the address on the console, and serves its
/// MAC (eth0's, lower case) over HTTP on port 80 at <c>/id</c> before it prints the ready marker.
/// </summary>
public static class FlightVmGuest
{
    public const string ReadyMarker = "FLIGHTVM-GUEST-READY";
    public const string DiskWriteMarker = "GUEST-WROTE-THIS";
    public const string IpMarker = "GUEST-IP";
    public const string DhcpFailedMarker = "GUEST-DHCP-FAILED";
    public static readonly string KernelArgs = TestGuest.KernelArgs();

    private static readonly object Gate = new();
    private static string? _initrd;
    private static string? _deafInitrd;
    private static string? _dhcpInitrd;

    /// <summary>An initrd whose guest powers off on the ACPI power button.</summary>
    public static string Initrd => Build(ref _initrd, "flightvm-guest.gz", listenForPowerButton: true);

    /// <summary>An initrd whose guest ignores the power button (for stop-timeout tests).</summary>
    public static string DeafInitrd => Build(ref _deafInitrd, "flightvm-guest-deaf.gz", listenForPowerButton: false);

    /// <summary>An initrd whose guest takes its address by DHCP (udhcpc on eth0) and serves its MAC on port 80, then is ready.</summary>
    public static string DhcpInitrd => Build(ref _dhcpInitrd, "flightvm-guest-dhcp.gz", listenForPowerButton: true, dhcp: true);

    public static string Kernel => TestGuest.Kernel.VmlinuxPath;

    /// <summary>The power-button listener every test guest sources (tests/Shared/GuestScripts, copied beside the tests).</summary>
    public static string PowerButtonScript => Path.Combine(AppContext.BaseDirectory, "GuestScripts", "power-button.sh");

    /// <summary>A small empty qcow2 base image.</summary>
    public static string CreateBase(string directory, string format = "qcow2", string size = "16M")
    {
        var path = Path.Combine(directory, "base." + (format == "qcow2" ? "qcow2" : "raw"));
        Programs.MustRun(RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils"), "create", "-q", "-f", format, path, size);
        return path;
    }

    private static string Build(ref string? cached, string fileName, bool listenForPowerButton, bool dhcp = false)
    {
        TestGuest.Qemu.ToString();
        lock (Gate)
        {
            if (cached is not null && File.Exists(cached)) return cached;
            var dir = Path.Combine(Path.GetTempPath(), $"vmtools-flightvm-guest-{Environment.ProcessId}");
            Directory.CreateDirectory(dir);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
            var power = listenForPowerButton ? ". /etc/power-button.sh" : "";
            // udhcpc runs the script with the lease in its environment; its output is the console.
            var network = dhcp
                ? $$"""
                  ip link set lo up
                  ip link set eth0 up
                  cat > /tmp/dhcp-event <<'EOS'
                  #!/bin/sh
                  case "$1" in
                    bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" && echo "{{IpMarker}} $ip" ;;
                  esac
                  EOS
                  chmod 755 /tmp/dhcp-event
                  if ! udhcpc -i eth0 -q -n -t 90 -T 1 -s /tmp/dhcp-event; then echo {{DhcpFailedMarker}}; while true; do sleep 3600; done; fi
                  mkdir -p /www && cat /sys/class/net/eth0/address > /www/id
                  httpd -p 80 -h /www
                  """
                : "";
            var init = $$"""
                #!/bin/sh
                mount -t proc proc /proc
                mount -t sysfs sys /sys
                mount -t devtmpfs dev /dev
                for m in $(cat /lib/modules/load-order); do insmod $m 2>/dev/null; done
                sleep 0.2
                if [ -b /dev/vda ]; then
                  echo {{DiskWriteMarker}} | dd of=/dev/vda bs=512 seek=8 conv=notrunc,fsync 2>/dev/null && echo DISK-WRITTEN
                fi
                {{power}}
                {{network}}
                echo {{ReadyMarker}}
                while true; do sleep 3600; done
                """;
            // af_packet, which udhcpc needs, is built into Debian's kernel; virtio_net is a module.
            var modules = new[] { "virtio_pci", "virtio_blk", "button", "evdev" }.Concat(dhcp ? new[] { "virtio_net" } : Array.Empty<string>());
            var extra = listenForPowerButton ? new Dictionary<string, string> { ["etc/power-button.sh"] = PowerButtonScript } : null;
            cached = TestGuest.BuildInitramfs(Path.Combine(dir, fileName), init, modules, extra);
            return cached;
        }
    }
}
