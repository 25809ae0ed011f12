using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace VmTools.TestSupport;

/// <summary>
/// A real Debian 12 root filesystem with systemd, cloud-init and a kernel + initrd in /boot, made by
/// debootstrap from Debian's packages (a few minutes) once per machine and kept as a tarball under
/// /var/tmp. A cross-process lock makes concurrent test runs wait for one bootstrap instead of racing,
/// and a marker file written last means "complete": a run killed half-way is redone, never used.
/// </summary>
public static class DebianBaseRootfs
{
    public const string Suite = "bookworm";
    public const string Mirror = "http://deb.debian.org/debian";

    /// <summary>What the guest needs to boot under qemu and run cloud-init (python3-cffi-backend: see ENVIRONMENT.md).</summary>
    public static readonly IReadOnlyList<string> Packages = new[]
    {
        "systemd", "systemd-sysv", "udev", "cloud-init", "kmod", "iproute2", "isc-dhcp-client", "netbase",
        "python3-cffi-backend", "linux-image-amd64", "initramfs-tools",
        // The setup script trusts the payload's CA with update-ca-certificates (which brings openssl).
        "ca-certificates",
        // Invoke-FlightVmCommand and Wait-FlightVm's SSH readiness. ifupdown makes cloud-init render
        // network-config with its ENI renderer, as on Debian's cloud images.
        "openssh-server", "ifupdown",
    };

    public static string CacheRoot => Environment.GetEnvironmentVariable("VMTOOLS_DEBIAN_BASE_CACHE") ?? "/var/tmp/vmtools-debian-base";

    /// <summary>The folder for this package set; a different set gets its own bootstrap.</summary>
    public static string Directory => Path.Combine(CacheRoot, Suite + "-" + Key());

    /// <summary>
    /// The rootfs tarball (tar -C ROOT -c .), bootstrapped now if this machine has none.
    /// <paramref name="log"/> receives what happened and how long it took.
    /// </summary>
    public static string EnsureTarball(Action<string>? log = null)
    {
        var debootstrap = RealComponent.RequireProgram("debootstrap", "apt-get install debootstrap");
        RealComponent.RequireRoot("debootstrap chroots and creates device nodes");
        var dir = Directory;
        var tarball = Path.Combine(dir, "rootfs.tar");
        var marker = Path.Combine(dir, "complete");
        System.IO.Directory.CreateDirectory(dir);
        if (File.Exists(marker)) return tarball;

        using var held = Lock(Path.Combine(dir, "lock"), TimeSpan.FromMinutes(20));
        if (File.Exists(marker))
        {
            log?.Invoke($"Debian base was bootstrapped by another process while this one waited: {tarball}");
            return tarball;
        }

        var clock = Stopwatch.StartNew();
        var root = Path.Combine(dir, "root");
        RemoveTree(root);
        File.Delete(tarball);
        var (code, stdout, stderr) = Programs.Run(debootstrap, "--variant=minbase", "--include=" + string.Join(',', Packages), Suite, root, Mirror);
        if (code != 0) throw new InvalidOperationException($"debootstrap exited {code}: {Tail(stderr + stdout)}");
        log?.Invoke($"debootstrap {Suite} took {clock.Elapsed.TotalSeconds:0}s");
        Configure(root);

        var tarClock = Stopwatch.StartNew();
        var partial = tarball + ".partial";
        // GNU tar keeps owners, modes, device nodes, hard links and xattrs exactly as debootstrap left them.
        var tar = Programs.Run("tar", "--xattrs", "--numeric-owner", "-C", root, "-cf", partial, ".");
        if (tar.ExitCode != 0) throw new InvalidOperationException($"tar exited {tar.ExitCode}: {tar.Stderr}");
        File.Move(partial, tarball, overwrite: true);
        RemoveTree(root);
        File.WriteAllText(marker, DateTime.UtcNow.ToString("O") + "\n" + string.Join(',', Packages) + "\n");
        log?.Invoke($"rootfs tarball ({new FileInfo(tarball).Length >> 20} MiB) took {tarClock.Elapsed.TotalSeconds:0}s: {tarball}");
        return tarball;
    }

    /// <summary>Imports the base into an engine as <paramref name="repositoryAndTag"/> (like `podman import - NAME`) and returns the image id.</summary>
    public static string ImportInto(EngineApi engine, string repositoryAndTag, Action<string>? log = null)
    {
        var tarball = EnsureTarball(log);
        var clock = Stopwatch.StartNew();
        var id = engine.ImportRootfs(tarball, repositoryAndTag);
        log?.Invoke($"import into the engine took {clock.Elapsed.TotalSeconds:0.0}s");
        return id;
    }

    /// <summary>What a NoCloud guest needs beyond the packages: only the seed ISO as datasource, and a root fstab entry.</summary>
    private static void Configure(string root)
    {
        var cfg = Path.Combine(root, "etc", "cloud", "cloud.cfg.d", "90-vmtools-datasource.cfg");
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(cfg)!);
        File.WriteAllText(cfg, "datasource_list: [ NoCloud, None ]\n");
        File.WriteAllText(Path.Combine(root, "etc", "fstab"), "LABEL=rootfs / ext4 defaults 0 1\n");
        File.WriteAllText(Path.Combine(root, "etc", "hostname"), "vmtools-debian\n");
    }

    private static string Key()
    {
        var text = Suite + "|" + Mirror + "|" + string.Join(',', Packages) + "|v1";
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12].ToLowerInvariant();
    }

    /// <summary>An exclusive lock across processes (flock via FileShare.None), waited for with a deadline.</summary>
    private static FileStream Lock(string path, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < until)
            {
                Thread.Sleep(500);
            }
        }
    }

    private static void RemoveTree(string path)
    {
        if (System.IO.Directory.Exists(path)) Programs.Run("rm", "-rf", "--one-file-system", path);
    }

    private static string Tail(string text) => text.Length > 4000 ? text[^4000..] : text;
}
