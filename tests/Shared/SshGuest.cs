using System.Text.RegularExpressions;

namespace VmTools.TestSupport;

/// <summary>
/// A busybox test guest that SSH really reaches: the host's own OpenSSH sshd and sftp-server with every
/// shared library <c>ldd</c> names (the dynamic loader included), a host key made per build, and the
/// public half of a per-process test key in <c>/root/.ssh/authorized_keys</c>. Its /init (the files of
/// tests/Shared/SshGuest/) loads virtio-net, takes a DHCP lease with busybox udhcpc, prints
/// <c>GUEST-IP &lt;addr&gt;</c> and <see cref="ReadyMarker"/> on ttyS0 once sshd runs, and powers off on
/// the ACPI power button like <see cref="FlightVmGuest"/>. No address is written anywhere: qemu's user
/// network leases 10.0.2.15, a tap on a bridge whatever its DHCP server gives.
/// </summary>
/// <remarks>
/// Get-TestGuest -Ssh in tests/Pester/RealComponents.psm1 builds the same layout in PowerShell from the
/// same folder; a change to what goes where must be made in both.
/// </remarks>
public static partial class SshGuest
{
    public const string ReadyMarker = "SSH-GUEST-READY";
    public const string User = "root";
    public static readonly string KernelArgs = TestGuest.KernelArgs();

    /// <summary>The binaries bundled with their libraries: the server and the subsystem scp talks to.</summary>
    private static readonly string[] Bundled = { "/usr/sbin/sshd", "/usr/lib/openssh/sftp-server" };

    private static readonly object Gate = new();
    private static (string Initrd, string KeyPath)? _built;

    public static string Kernel => TestGuest.Kernel.VmlinuxPath;

    /// <summary>The initramfs, built once per test process.</summary>
    public static string Initrd => Build().Initrd;

    /// <summary>The private key the guest accepts for <see cref="User"/> (0600, in a 0700 folder of this process).</summary>
    public static string KeyPath => Build().KeyPath;

    /// <summary>The address the guest printed after its DHCP lease, or null when it has not (yet).</summary>
    public static string? GuestAddress(string consoleLogPath)
    {
        if (!File.Exists(consoleLogPath)) return null;
        using var reader = new StreamReader(new FileStream(consoleLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        var m = GuestIpLine().Match(reader.ReadToEnd());
        return m.Success ? m.Groups[1].Value : null;
    }

    [GeneratedRegex(@"^GUEST-IP (\d+\.\d+\.\d+\.\d+)\r?$", RegexOptions.Multiline)]
    private static partial Regex GuestIpLine();

    private static (string Initrd, string KeyPath) Build()
    {
        lock (Gate)
        {
            if (_built is { } b && File.Exists(b.Initrd)) return b;
            foreach (var p in Bundled) RealComponent.Require(File.Exists(p), $"'{p}' is not installed (apt-get install openssh-server).");
            var keygen = RealComponent.RequireProgram("ssh-keygen", "apt-get install openssh-client");
            var ldd = RealComponent.RequireProgram("ldd", "apt-get install libc-bin");

            // Keys are secrets even in a test: a private folder, removed when the process ends.
            var dir = Path.Combine(Path.GetTempPath(), $"vmtools-ssh-guest-{Environment.ProcessId}");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };

            var key = Path.Combine(dir, "id_ed25519");
            var hostKey = Path.Combine(dir, "ssh_host_ed25519_key");
            Programs.MustRun(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "vmtools-test-client", "-f", key);
            Programs.MustRun(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "vmtools-test-guest", "-f", hostKey);

            var layout = Path.Combine(AppContext.BaseDirectory, "SshGuest");
            var files = new Dictionary<string, string>
            {
                ["etc/udhcpc.script"] = Staged(dir, Path.Combine(layout, "udhcpc.script"), 0b111_101_101),
                ["etc/ssh/sshd_config"] = Staged(dir, Path.Combine(layout, "sshd_config"), 0b110_100_100),
                ["etc/passwd"] = Staged(dir, Path.Combine(layout, "passwd"), 0b110_100_100),
                ["etc/group"] = Staged(dir, Path.Combine(layout, "group"), 0b110_100_100),
                ["etc/nsswitch.conf"] = Staged(dir, Path.Combine(layout, "nsswitch.conf"), 0b110_100_100),
                ["etc/power-button.sh"] = FlightVmGuest.PowerButtonScript,
                ["etc/ssh/ssh_host_ed25519_key"] = hostKey,
                ["root/.ssh/authorized_keys"] = Staged(dir, key + ".pub", 0b110_000_000),
            };
            foreach (var program in Bundled)
            {
                files[program.TrimStart('/')] = program;
                foreach (var library in SharedLibraries(ldd, program)) files[library.TrimStart('/')] = library;
            }

            var init = File.ReadAllText(Path.Combine(layout, "init"));
            var initrd = TestGuest.BuildInitramfs(Path.Combine(dir, "ssh-guest.gz"), init, new[] { "virtio_pci", "virtio_net", "button", "evdev" }, files);
            _built = (initrd, key);
            return _built.Value;
        }
    }

    /// <summary>A copy of <paramref name="source"/> in the build folder with <paramref name="mode"/>: BuildInitramfs keeps the host file's mode.</summary>
    private static string Staged(string dir, string source, int mode)
    {
        var copy = Path.Combine(dir, "staged-" + Path.GetFileName(source));
        File.Copy(source, copy, overwrite: true);
        File.SetUnixFileMode(copy, (UnixFileMode)mode);
        return copy;
    }

    /// <summary>
    /// What <c>ldd</c> says <paramref name="program"/> loads: the "name =&gt; /path" lines and the loader's own
    /// absolute line. The guest gets each at the same path, which is where the loader looks for it.
    /// </summary>
    internal static IEnumerable<string> SharedLibraries(string ldd, string program)
    {
        var (code, stdout, stderr) = Programs.Run(ldd, program);
        if (code != 0) RealComponent.Unavailable($"'ldd {program}' failed: {stderr.Trim()}");
        foreach (var line in stdout.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var arrow = line.IndexOf("=> ", StringComparison.Ordinal);
            var path = (arrow >= 0 ? line[(arrow + 3)..] : line).Split(' ')[0];
            if (path.StartsWith('/')) yield return path;
        }
    }
}
