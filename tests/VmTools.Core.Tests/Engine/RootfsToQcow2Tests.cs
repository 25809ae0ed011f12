using System.Formats.Tar;
using System.IO.Compression;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.Images;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Engine;

/// <summary>A rootfs tarball straight to a bootable qcow2 (no engine), read back with qemu-img, e2fsck and debugfs.</summary>
public sealed class RootfsToQcow2Tests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-rootfs");
    private readonly List<string> _warnings = new();

    public void Dispose() => _dir.Dispose();

    private Task<Qcow2Image> Build(string output, string archive, long? size = null, bool requireKernel = false, bool overwrite = false)
        => new Qcow2ImageBuilder(ProcessRunner.Instance).BuildAsync(new Qcow2ImageRequest(output, new Qcow2ImageSource.RootfsArchive(archive))
        {
            Size = size,
            RequireKernel = requireKernel,
            Overwrite = overwrite,
            Warn = w => { lock (_warnings) _warnings.Add(w); },
        }, null, CancellationToken.None);

    private void RequireTools()
    {
        RealComponent.RequireProgram("mkfs.ext4", "apt-get install e2fsprogs");
        RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
    }

    private IEnumerable<string> Leftovers() => Directory.EnumerateFileSystemEntries(_dir.Path, ".*vmtools-build*");

    [Fact]
    public async Task Tarball_BecomesCheckedExt4Qcow2_WithEveryEntryKindPreserved()
    {
        RequireTools();
        RealComponent.RequireRoot("owners and device nodes are only kept when extracting as root");
        var archive = TinyRootfs.WriteTarball(_dir.Combine("rootfs.tar"));
        var output = _dir.Combine("out", "disk.qcow2");

        var image = await Build(output, archive);

        Assert.Equal(output, image.Path);
        Programs.MustRun("qemu-img", "check", "-q", output);
        Assert.Contains("file format: qcow2", Programs.MustRun("qemu-img", "info", output));
        Assert.Null(image.ImageId);
        using var fs = new Ext4Inspector(output, _dir.Path);
        var (fsck, fsckOutput) = fs.Check();
        Assert.True(fsck == 0, "e2fsck -fn found problems: " + fsckOutput);
        Assert.Equal("rootfs", fs.Label);

        Assert.Equal(TinyRootfs.Hostname + "\n", System.Text.Encoding.ASCII.GetString(fs.ReadFile("/etc/hostname")));
        Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        Assert.Equal(File.ReadAllBytes(TinyRootfs.Busybox), fs.ReadFile("/bin/busybox"));

        var sample = fs.Stat("/" + TinyRootfs.SamplePath);
        var hardLink = fs.Stat("/usr/share/vmtools/sample-hardlink.bin");
        Assert.Equal(sample.Inode, hardLink.Inode);
        Assert.Equal(2, sample.Links);
        Assert.Equal(0b100_111_101_101, fs.Stat("/usr/bin/su-test").Mode);
        Assert.Equal(0b111_101_101, fs.Stat("/bin/busybox").Mode);
        var shadow = fs.Stat("/etc/shadow");
        Assert.Equal((0, 42, 0b110_100_000), (shadow.Uid, shadow.Gid, shadow.Mode));
        var home = fs.Stat("/home/user");
        Assert.Equal((1000, 1000, 0b111_000_000, "directory"), (home.Uid, home.Gid, home.Mode, home.Type));
        Assert.Equal(1000, fs.Stat("/home/user/notes.txt").Uid);
        var root = fs.Stat("/");
        Assert.Equal((0, 0), (root.Uid, root.Gid));

        var devNull = fs.Stat("/dev/null");
        Assert.Equal(("character special", "1:3", 0b110_110_110), (devNull.Type, devNull.Device, devNull.Mode));
        var vda = fs.Stat("/dev/vda");
        Assert.Equal(("block special", "254:0", 6), (vda.Type, vda.Device, vda.Gid));
        Assert.Equal("FIFO", fs.Stat("/run/initctl").Type);
        Assert.Equal("symlink", fs.Stat("/bin/sh").Type);
        Assert.Equal("busybox", fs.ReadLink("/bin/sh"));
        Assert.Equal(TinyRootfs.LongLinkTarget, fs.ReadLink("/usr/share/vmtools/long-link"));
        Assert.False(fs.Exists("/.dockerenv"), "the container marker must not reach a VM disk");

        Assert.Equal(TinyRootfs.NewKernelVersion, image.KernelVersion);
        Assert.Equal(Path.Combine(_dir.Path, "out", "disk.vmlinuz"), image.KernelPath);
        Assert.Equal(Path.Combine(_dir.Path, "out", "disk.initrd.img"), image.InitrdPath);
        Assert.Equal(TinyRootfs.Kernel(TinyRootfs.NewKernelVersion), File.ReadAllBytes(image.KernelPath!));
        Assert.Equal(TinyRootfs.Initrd(TinyRootfs.NewKernelVersion), File.ReadAllBytes(image.InitrdPath!));
        // The kernel also stays in the guest's /boot.
        Assert.Equal(TinyRootfs.Kernel(TinyRootfs.NewKernelVersion), fs.ReadFile($"/boot/vmlinuz-{TinyRootfs.NewKernelVersion}"));

        Assert.Equal(new FileInfo(output).Length, image.Size);
        Assert.True(image.Size < image.VirtualSize / 4, "qcow2 stores only used blocks");
        Assert.Empty(Leftovers());
        Assert.Empty(_warnings);
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("zstd")]
    public async Task CompressedTarball_IsRecognisedByItsMagicBytes(string compression)
    {
        RequireTools();
        var plain = TinyRootfs.WriteTarball(_dir.Combine("rootfs.tar"));
        var archive = _dir.Combine("rootfs.tar." + compression);
        using (var src = File.OpenRead(plain))
        using (var dst = File.Create(archive))
        using (Stream z = compression == "gzip" ? new GZipStream(dst, CompressionLevel.Fastest) : new ZstdSharp.CompressionStream(dst))
        {
            src.CopyTo(z);
        }

        var image = await Build(_dir.Combine("disk.qcow2"), archive);

        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        Assert.NotNull(image.KernelPath);
    }

    [Fact]
    public async Task XzTarball_IsRefusedWithAHint()
    {
        RequireTools();
        var archive = _dir.Combine("rootfs.tar.xz");
        File.WriteAllBytes(archive, new byte[] { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3 });
        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(_dir.Combine("disk.qcow2"), archive));
        Assert.Equal("RootfsArchiveInvalid", e.ErrorId);
        Assert.Contains("xz", e.Message);
        Assert.False(File.Exists(_dir.Combine("disk.qcow2")));
    }

    [Fact]
    public async Task GarbageArchive_IsRootfsArchiveInvalid_AndLeavesNothing()
    {
        RequireTools();
        var archive = _dir.Combine("garbage.tar");
        File.WriteAllBytes(archive, TinyRootfs.Sample(4096, seed: 3));
        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(_dir.Combine("disk.qcow2"), archive));
        Assert.Equal("RootfsArchiveInvalid", e.ErrorId);
        Assert.False(File.Exists(_dir.Combine("disk.qcow2")));
        Assert.Empty(Leftovers());
    }

    [Theory]
    [InlineData("dotdot")]
    [InlineData("hardlink")]
    public async Task EntryEscapingTheRoot_IsRefused(string kind)
    {
        RequireTools();
        var victim = _dir.Combine("victim.txt");
        File.WriteAllText(victim, "untouched");
        var archive = _dir.Combine("evil.tar");
        using (var w = new TarWriter(File.Create(archive), TarEntryFormat.Pax))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "etc/"));
            if (kind == "dotdot")
            {
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/../../../victim.txt") { DataStream = new MemoryStream("pwned"u8.ToArray()) });
            }
            else
            {
                w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "etc/passwd") { LinkName = "../../../victim.txt" });
            }
        }

        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(_dir.Combine("out", "disk.qcow2"), archive));
        Assert.Equal("Qcow2ImageRootfsEntryInvalid", e.ErrorId);
        Assert.Equal("untouched", File.ReadAllText(victim));
        Assert.False(File.Exists(_dir.Combine("out", "disk.qcow2")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Combine("out")));
    }

    [Fact]
    public async Task EntryThroughASymlink_IsRefused_AndNothingIsWrittenWhereTheLinkPoints()
    {
        RequireTools();
        var outside = Directory.CreateDirectory(_dir.Combine("outside")).FullName;
        var archive = _dir.Combine("evil.tar");
        using (var w = new TarWriter(File.Create(archive), TarEntryFormat.Pax))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "etc") { LinkName = outside });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/cron.d/pwn") { DataStream = new MemoryStream("* * * * * root id\n"u8.ToArray()) });
        }

        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(_dir.Combine("disk.qcow2"), archive));
        Assert.Equal("Qcow2ImageRootfsEntryInvalid", e.ErrorId);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public async Task NoKernel_WarnsAndReturnsNoBootFiles_OrFailsWhenRequired()
    {
        RequireTools();
        var archive = TinyRootfs.WriteTarball(_dir.Combine("nokernel.tar"), withKernel: false);

        var image = await Build(_dir.Combine("a.qcow2"), archive);
        Assert.Null(image.KernelPath);
        Assert.Null(image.InitrdPath);
        Assert.Contains(_warnings, w => w.Contains("no kernel under /boot", StringComparison.Ordinal));
        Assert.False(File.Exists(_dir.Combine("a.vmlinuz")));

        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(_dir.Combine("b.qcow2"), archive, requireKernel: true));
        Assert.Equal("Qcow2ImageKernelNotFound", e.ErrorId);
        Assert.False(File.Exists(_dir.Combine("b.qcow2")));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public async Task ExplicitSize_IsTheVirtualSize_AndTooSmallIsRefused()
    {
        RequireTools();
        var archive = TinyRootfs.WriteTarball(_dir.Combine("rootfs.tar"));

        var image = await Build(_dir.Combine("big.qcow2"), archive, size: 1L << 30);
        Assert.Equal(1L << 30, image.VirtualSize);
        Assert.Contains("virtual size: 1 GiB", Programs.MustRun("qemu-img", "info", image.Path));

        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(_dir.Combine("small.qcow2"), archive, size: 8L << 20));
        Assert.Equal("Qcow2ImageTooSmall", e.ErrorId);
        Assert.False(File.Exists(_dir.Combine("small.qcow2")));
    }

    [Fact]
    public async Task ExistingOutput_IsKeptUnlessOverwrite_ThenReplacedWithoutAStaleKernel()
    {
        RequireTools();
        var withKernel = TinyRootfs.WriteTarball(_dir.Combine("k.tar"));
        var withoutKernel = TinyRootfs.WriteTarball(_dir.Combine("nk.tar"), withKernel: false);
        var output = _dir.Combine("disk.qcow2");
        var first = await Build(output, withKernel);
        Assert.True(File.Exists(first.KernelPath));
        var before = File.ReadAllBytes(output);

        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(output, withoutKernel));
        Assert.Equal("Qcow2ImageExists", e.ErrorId);
        Assert.Equal(before, File.ReadAllBytes(output));

        var second = await Build(output, withoutKernel, overwrite: true);
        Assert.Null(second.KernelPath);
        Assert.False(File.Exists(first.KernelPath), "a kernel from the earlier build would not match the new disk");
        Assert.False(File.Exists(first.InitrdPath));
    }

    [Fact]
    public void KernelVersions_CompareNumerically()
    {
        var versions = new[] { "6.1.0-9-amd64", "6.1.0-10-amd64", "5.10.0-28-amd64", "6.1.0-10-cloud-amd64" };
        var newest = versions.Order(BootFileFinder.VersionOrder).Last();
        Assert.Equal("6.1.0-10-cloud-amd64", newest);
        Assert.True(BootFileFinder.VersionOrder.Compare("6.1.0-10-amd64", "6.1.0-9-amd64") > 0);
    }
}
