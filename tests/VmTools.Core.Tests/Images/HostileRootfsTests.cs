using System.Formats.Tar;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.Images;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Images;

/// <summary>
/// Rootfs tarballs written by an attacker: symlinks swapped in for directories, hard links to host
/// files, '..', device nodes. Whatever the archive says, nothing outside the staging root changes
/// (a canary folder of host files is compared by checksum listing), a refused entry is named in a
/// Qcow2ImageRootfsEntryInvalid, and no disk is left behind.
/// </summary>
public sealed class HostileRootfsTests : IDisposable
{
    private const string Refused = "Qcow2ImageRootfsEntryInvalid";
    private readonly TempDirectory _dir = new("vmtools-hostile");
    private readonly CanaryDirectory _canary = new();

    public void Dispose()
    {
        _dir.Dispose();
        _canary.Dispose();
    }

    private string Output => _dir.Combine("out", "disk.qcow2");

    private static PaxTarEntry Dir(string name, UnixFileMode? mode = null)
        => new(TarEntryType.Directory, name) { Mode = mode ?? (UnixFileMode)0b111_101_101 };

    private static PaxTarEntry File(string name, string content = "pwned\n", UnixFileMode? mode = null)
        => new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)), Mode = mode ?? (UnixFileMode)0b110_100_100 };

    private static PaxTarEntry Symlink(string name, string target) => new(TarEntryType.SymbolicLink, name) { LinkName = target };

    private static PaxTarEntry HardLink(string name, string target) => new(TarEntryType.HardLink, name) { LinkName = target };

    private static PaxTarEntry Device(TarEntryType type, string name, int major = 0, int minor = 0)
    {
        var entry = new PaxTarEntry(type, name) { Mode = (UnixFileMode)0b110_110_110 };
        if (type != TarEntryType.Fifo) (entry.DeviceMajor, entry.DeviceMinor) = (major, minor);
        return entry;
    }

    private string Tarball(params PaxTarEntry[] entries)
    {
        var path = _dir.Combine($"evil-{Guid.NewGuid():N}.tar");
        using var w = new TarWriter(System.IO.File.Create(path), TarEntryFormat.Pax);
        foreach (var e in entries) w.WriteEntry(e);
        return path;
    }

    private Task<Qcow2Image> Build(string archive)
        => new Qcow2ImageBuilder(ProcessRunner.Instance).BuildAsync(new Qcow2ImageRequest(Output, new Qcow2ImageSource.RootfsArchive(archive)), null, CancellationToken.None);

    /// <summary>Builds, expects the refusal naming <paramref name="entry"/>, and checks nothing was left anywhere.</summary>
    private async Task<VmToolsException> AssertRefused(string archive, string entry)
    {
        var e = await Assert.ThrowsAsync<VmToolsException>(() => Build(archive));
        Assert.Equal(Refused, e.ErrorId);
        Assert.Equal(FailureKind.SecurityError, e.Kind);
        Assert.Equal(entry, e.Target);
        Assert.Contains($"'{entry}'", e.Message);
        _canary.AssertUntouched();
        Assert.False(System.IO.File.Exists(Output), "a refused archive leaves no disk");
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Combine("out")));
        return e;
    }

    private void RequireTools()
    {
        RealComponent.RequireProgram("mkfs.ext4", "apt-get install e2fsprogs");
        RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        RealComponent.RequireProgram("debugfs", "apt-get install e2fsprogs");
    }

    [Fact]
    public async Task DirectoryReplacedBySymlink_ThenASetuidFileThroughIt_IsRefused_AndTheHostFolderGetsNothing()
    {
        var archive = Tarball(
            Dir("etc/"),
            File("etc/hostname", "box\n"),
            Symlink("etc", _canary.Path),
            File("etc/pwned", "#!/bin/sh\nid\n", (UnixFileMode)0b100_111_101_101));

        var e = await AssertRefused(archive, "etc/pwned");
        Assert.Contains("symbolic link", e.Message);
        Assert.False(System.IO.File.Exists(_canary.Combine("pwned")));
    }

    [Fact]
    public async Task HardLinkWhoseTargetRunsThroughASymlink_IsRefused()
    {
        var archive = Tarball(Symlink("hostetc", _canary.Path), HardLink("etc/passwd", "hostetc/passwd"));
        await AssertRefused(archive, "etc/passwd");
    }

    [Fact]
    public async Task HardLinkWhoseNameRunsThroughASymlink_IsRefused()
    {
        var archive = Tarball(File("inside"), Symlink("etc", _canary.Path), HardLink("etc/planted", "inside"));
        await AssertRefused(archive, "etc/planted");
    }

    [Theory]
    [InlineData("../escaped")]
    [InlineData("etc/../../escaped")]
    [InlineData("./../../../../../../escaped")]
    public async Task NameClimbingOutWithDotDot_IsRefused(string name)
    {
        var archive = Tarball(Dir("etc/"), File(name));
        await AssertRefused(archive, name);
    }

    [Fact]
    public async Task HardLinkTargetClimbingOutWithDotDot_IsRefused()
    {
        var relativeToCanary = Path.GetRelativePath(_dir.Path, _canary.Combine("passwd"));
        var archive = Tarball(Dir("etc/"), HardLink("etc/passwd", "../../../../../../../" + relativeToCanary));
        var e = await AssertRefused(archive, "etc/passwd");
        Assert.Contains("..", e.Message);
    }

    [Fact]
    public async Task AbsoluteHardLinkTarget_IsReadInsideTheArchive_SoAHostFileIsNeverLinked()
    {
        // "/tmp/.../passwd" names the archive's own member tmp/.../passwd, which it never wrote.
        var archive = Tarball(Dir("etc/"), HardLink("etc/passwd", _canary.Combine("passwd")));
        var e = await AssertRefused(archive, "etc/passwd");
        Assert.Contains("not a regular file written earlier by this archive", e.Message);
    }

    [Fact]
    public async Task FileThroughAChainOfSymlinks_IsRefused()
    {
        var archive = Tarball(Symlink("b", _canary.Path), Symlink("a", "b"), File("a/sub/pwned"));
        await AssertRefused(archive, "a/sub/pwned");
        Assert.False(Directory.Exists(_canary.Combine("sub", "sub")));
    }

    [Fact]
    public async Task DeviceNodeThroughASymlink_IsRefused_AndNoNodeAppearsOnTheHost()
    {
        var archive = Tarball(Symlink("dev", _canary.Path), Device(TarEntryType.BlockDevice, "dev/sda", 8, 0));
        await AssertRefused(archive, "dev/sda");
    }

    [Theory]
    [InlineData(TarEntryType.Directory)]
    [InlineData(TarEntryType.SymbolicLink)]
    [InlineData(TarEntryType.Fifo)]
    public async Task HardLinkToAnythingButAnExtractedRegularFile_IsRefused(TarEntryType kind)
    {
        PaxTarEntry first = kind switch
        {
            TarEntryType.Directory => Dir("thing/"),
            TarEntryType.SymbolicLink => Symlink("thing", _canary.Combine("passwd")),
            _ => Device(TarEntryType.Fifo, "thing"),
        };
        var archive = Tarball(first, HardLink("copy", "thing"));
        await AssertRefused(archive, "copy");
    }

    [Fact]
    public async Task FileReplacingASymlinkToAHostFile_ReplacesTheLink_NotTheHostFile()
    {
        RequireTools();
        var archive = Tarball(Dir("etc/"), Symlink("etc/passwd", _canary.Combine("passwd")), File("etc/passwd", "guest:x:0:0::/:/bin/sh\n"));

        var image = await Build(archive);

        _canary.AssertUntouched();
        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal("regular", fs.Stat("/etc/passwd").Type);
        Assert.Equal("guest:x:0:0::/:/bin/sh\n", System.Text.Encoding.UTF8.GetString(fs.ReadFile("/etc/passwd")));
    }

    [Fact]
    public async Task DirectoryReplacedBySymlink_KeepsTheLinkInTheImage_AndItsRecordedModeNeverReachesTheHost()
    {
        RequireTools();
        // The directory's metadata (0777, 1970) is applied last; by then "d" is a symlink to the canary.
        var archive = Tarball(
            Dir("d/", (UnixFileMode)0b111_111_111),
            File("d/inside"),
            Symlink("d", _canary.Path),
            Dir("etc/"),
            Symlink("etc/up", "../../../../.." + _canary.Path),
            Symlink("etc/alternatives", "/etc"));

        var image = await Build(archive);

        _canary.AssertUntouched();
        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal("symlink", fs.Stat("/d").Type);
        Assert.Equal(_canary.Path, fs.ReadLink("/d"));
        Assert.Equal("../../../../.." + _canary.Path, fs.ReadLink("/etc/up"));
        Assert.Equal("/etc", fs.ReadLink("/etc/alternatives"));
    }

    [Fact]
    public async Task SymlinkNamedDot_CannotRedirectTheRoot()
    {
        RequireTools();
        var archive = Tarball(Symlink("./", _canary.Path), File("pwned"));

        var image = await Build(archive);

        _canary.AssertUntouched();
        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal("regular", fs.Stat("/pwned").Type);
    }

    [Fact]
    public async Task DeviceNodesAndFifos_AreKeptInTheImage_AndMadeOnlyInsideThePrivateStagingRoot()
    {
        RequireTools();
        RealComponent.RequireRoot("device nodes are only made when extracting as root");
        var archive = Tarball(Dir("dev/"), Device(TarEntryType.CharacterDevice, "dev/mem", 1, 1), Device(TarEntryType.BlockDevice, "dev/sda", 8, 0), Device(TarEntryType.Fifo, "dev/initctl"));

        var image = await Build(archive);

        _canary.AssertUntouched();
        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal(("character special", "1:1", 0b110_110_110), (fs.Stat("/dev/mem").Type, fs.Stat("/dev/mem").Device, fs.Stat("/dev/mem").Mode));
        Assert.Equal(("block special", "8:0"), (fs.Stat("/dev/sda").Type, fs.Stat("/dev/sda").Device));
        Assert.Equal("FIFO", fs.Stat("/dev/initctl").Type);
        // The staging tree (and its nodes) is gone with the work folder.
        Assert.Equal(new[] { "disk.qcow2" }, Directory.GetFileSystemEntries(_dir.Combine("out")).Select(Path.GetFileName).ToArray());
    }

    [Fact]
    public async Task ExtractorAlone_DirectoryMetadataAppliedLast_SkipsADirectoryNowASymlink()
    {
        // Without mkfs: the staged tree itself shows the link kept and the canary's mode unchanged.
        var root = _dir.Combine("stage", "rootfs");
        var archive = Tarball(Dir("d/", (UnixFileMode)0b111_111_111), Symlink("d", _canary.Combine("sub")));
        await using (var tar = System.IO.File.OpenRead(archive))
        {
            await new RootfsExtractor(root).ExtractAsync(tar, CancellationToken.None);
        }

        Assert.Equal(_canary.Combine("sub"), new FileInfo(Path.Combine(root, "d")).LinkTarget);
        _canary.AssertUntouched();
    }
}
