using System.Formats.Tar;

namespace VmTools.TestSupport;

/// <summary>
/// A small root filesystem around busybox-static, written by hand (System.Formats.Tar) so every kind of
/// entry a real rootfs has is there: owners, set-uid, hard link, symlinks (short and long), device
/// nodes, a fifo, a container marker that must be dropped, and two kernels under /boot (the newer
/// one by version order, not by name order) with their initrds.
/// </summary>
public static class TinyRootfs
{
    public const string Hostname = "vmtools-tiny";
    public const string NewKernelVersion = "6.1.0-10-amd64";
    public const string OldKernelVersion = "6.1.0-9-amd64";
    public const string SamplePath = "usr/share/vmtools/sample.bin";
    public const string LongLinkTarget = "/usr/share/vmtools/a-deliberately-long-target-name-beyond-sixty-bytes/sample.bin";

    public static string Busybox => RealComponent.RequireProgram("busybox", "apt-get install busybox-static");

    /// <summary>Seeded bytes: the sample file's content, so a reader can compare every byte.</summary>
    public static byte[] Sample(int length = 300_000, int seed = 7)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] Kernel(string version) => Sample(40_000, StableSeed(version));

    public static byte[] Initrd(string version) => Sample(20_000, StableSeed(version) + 1);

    // string.GetHashCode is randomised per process; the content must not be.
    private static int StableSeed(string text) => text.Aggregate(17, (h, c) => unchecked(h * 31 + c));

    /// <summary>Writes the tarball; <paramref name="withKernel"/> false leaves /boot empty.</summary>
    public static string WriteTarball(string path, bool withKernel = true)
    {
        var busybox = System.IO.File.ReadAllBytes(Busybox);
        using var fs = System.IO.File.Create(path);
        using var w = new TarWriter(fs, TarEntryFormat.Pax);
        Dir(w, "./");
        Dir(w, "bin/");
        Entry(w, "bin/busybox", busybox, 0b111_101_101);
        Link(w, "bin/sh", "busybox");
        Dir(w, "etc/");
        Entry(w, "etc/hostname", System.Text.Encoding.ASCII.GetBytes(Hostname + "\n"), 0b110_100_100);
        Entry(w, "etc/shadow", "root:*:19000:0:99999:7:::\n"u8.ToArray(), 0b110_100_000, gid: 42);
        Dir(w, "usr/");
        Dir(w, "usr/bin/");
        Entry(w, "usr/bin/su-test", "#!/bin/sh\n"u8.ToArray(), 0b100_111_101_101);
        Dir(w, "usr/share/");
        Dir(w, "usr/share/vmtools/");
        Entry(w, SamplePath, Sample(), 0b110_100_100);
        w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "usr/share/vmtools/sample-hardlink.bin") { LinkName = SamplePath });
        Link(w, "usr/share/vmtools/long-link", LongLinkTarget);
        Dir(w, "home/");
        Dir(w, "home/user/", mode: 0b111_000_000, uid: 1000, gid: 1000);
        Entry(w, "home/user/notes.txt", "mine\n"u8.ToArray(), 0b110_000_000, uid: 1000, gid: 1000);
        Dir(w, "dev/");
        w.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "dev/null") { DeviceMajor = 1, DeviceMinor = 3, Mode = (UnixFileMode)0b110_110_110 });
        w.WriteEntry(new PaxTarEntry(TarEntryType.BlockDevice, "dev/vda") { DeviceMajor = 254, DeviceMinor = 0, Mode = (UnixFileMode)0b110_110_000, Gid = 6 });
        Dir(w, "run/");
        w.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, "run/initctl") { Mode = (UnixFileMode)0b110_000_000 });
        Entry(w, ".dockerenv", Array.Empty<byte>(), 0b110_100_100);
        Dir(w, "boot/");
        if (withKernel)
        {
            foreach (var v in new[] { OldKernelVersion, NewKernelVersion })
            {
                Entry(w, $"boot/vmlinuz-{v}", Kernel(v), 0b110_100_100);
                Entry(w, $"boot/initrd.img-{v}", Initrd(v), 0b110_100_100);
            }
        }

        return path;
    }

    /// <summary>
    /// A build context: rootfs/ holds the plain files of the tarball (COPY cannot carry owners or devices),
    /// and the Containerfile copies it into a FROM scratch image, optionally with a RUN step.
    /// </summary>
    public static string WriteContext(string directory, string? runStep = "echo built-by-run > /etc/built", bool withKernel = true)
    {
        var root = Path.Combine(directory, "rootfs");
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        Directory.CreateDirectory(Path.Combine(root, "boot"));
        Directory.CreateDirectory(Path.Combine(root, Path.GetDirectoryName(SamplePath)!));
        System.IO.File.Copy(Busybox, Path.Combine(root, "bin", "busybox"));
        System.IO.File.CreateSymbolicLink(Path.Combine(root, "bin", "sh"), "busybox");
        System.IO.File.WriteAllText(Path.Combine(root, "etc", "hostname"), Hostname + "\n");
        System.IO.File.WriteAllBytes(Path.Combine(root, SamplePath), Sample());
        if (withKernel)
        {
            System.IO.File.WriteAllBytes(Path.Combine(root, "boot", $"vmlinuz-{NewKernelVersion}"), Kernel(NewKernelVersion));
            System.IO.File.WriteAllBytes(Path.Combine(root, "boot", $"initrd.img-{NewKernelVersion}"), Initrd(NewKernelVersion));
        }

        var containerfile = "FROM scratch\nCOPY rootfs/ /\n";
        if (runStep is not null) containerfile += $"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"{runStep.Replace("\"", "\\\"")}\"]\n";
        var path = Path.Combine(directory, "Containerfile");
        System.IO.File.WriteAllText(path, containerfile);
        return path;
    }

    private static void Dir(TarWriter w, string name, int mode = 0b111_101_101, int uid = 0, int gid = 0)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid });

    private static void Entry(TarWriter w, string name, byte[] content, int mode, int uid = 0, int gid = 0)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid, DataStream = new MemoryStream(content) };
        w.WriteEntry(e);
    }

    private static void Link(TarWriter w, string name, string target)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0b111_111_111 });
}
