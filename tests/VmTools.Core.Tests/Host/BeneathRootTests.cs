using VmTools.Core.Host;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Host;

/// <summary>
/// The resolve-beneath primitive on its own, with openat2 and with the per-component O_NOFOLLOW walk
/// used where openat2 is missing: symlinks anywhere on the path are refused, not followed.
/// </summary>
public sealed class BeneathRootTests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-beneath");
    private readonly CanaryDirectory _canary = new();
    private readonly string _root;

    public BeneathRootTests()
    {
        _root = Directory.CreateDirectory(_dir.Combine("root")).FullName;
        Directory.CreateDirectory(Path.Combine(_root, "real", "sub"));
        File.CreateSymbolicLink(Path.Combine(_root, "out"), _canary.Path);
        File.CreateSymbolicLink(Path.Combine(_root, "real", "up"), "..");
    }

    public void Dispose()
    {
        BeneathRoot.Openat2Missing = false;
        _dir.Dispose();
        _canary.Dispose();
    }

    public static TheoryData<bool> Modes => new() { false, true };

    [Theory]
    [MemberData(nameof(Modes))]
    public void ParentThroughASymlink_IsRefusedAsASymlink(bool componentWalk)
    {
        BeneathRoot.Openat2Missing = componentWalk;
        using var root = BeneathRoot.Open(_root);

        foreach (var path in new[] { "out/passwd", "out/sub/deeper/x", "real/up/out/passwd" })
        {
            var e = Assert.Throws<PathNotBeneathRootException>(() => root.OpenParent(path, createMissing: true, out _));
            Assert.Equal(UnixFileSystem.ELOOP, e.Errno);
        }

        _canary.AssertUntouched();
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void DotDotAndEmptySegments_AreRefusedNotCleaned(bool componentWalk)
    {
        BeneathRoot.Openat2Missing = componentWalk;
        using var root = BeneathRoot.Open(_root);

        foreach (var path in new[] { "../x", "real/../../x", "/etc/passwd", "real//x", "./x" })
        {
            var e = Assert.Throws<PathNotBeneathRootException>(() => root.OpenParent(path, createMissing: true, out _));
            Assert.Equal(UnixFileSystem.EXDEV, e.Errno);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void MissingParents_AreMadeBeneathTheRoot_AndFilesAreCreatedExclusively(bool componentWalk)
    {
        BeneathRoot.Openat2Missing = componentWalk;
        using var root = BeneathRoot.Open(_root);

        using (var parent = root.OpenParent("new/a/b/file", createMissing: true, out var name))
        {
            Assert.Equal("new/a/b", parent.RelativePath);
            using (parent.CreateFile(name, UnixFileMode.UserRead | UnixFileMode.UserWrite)) { }
            Assert.Throws<IOException>(() => parent.CreateFile(name, UnixFileMode.UserRead));
        }

        Assert.True(File.Exists(Path.Combine(_root, "new", "a", "b", "file")));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ASymlinkAsTheLastName_IsReplacedNotWrittenThrough(bool componentWalk)
    {
        BeneathRoot.Openat2Missing = componentWalk;
        using var root = BeneathRoot.Open(_root);

        using (var parent = root.OpenParent("real/passwd", createMissing: false, out var name))
        {
            parent.MakeSymlink(name, _canary.Combine("passwd"));
            Assert.Throws<IOException>(() => parent.CreateFile(name, UnixFileMode.UserWrite));
            parent.Remove(name);
            using var file = parent.CreateFile(name, UnixFileMode.UserWrite);
        }

        Assert.Null(new FileInfo(Path.Combine(_root, "real", "passwd")).LinkTarget);
        _canary.AssertUntouched();
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void RemovingATreeHoldingASymlinkToTheHost_RemovesTheLinkOnly(bool componentWalk)
    {
        BeneathRoot.Openat2Missing = componentWalk;
        File.CreateSymbolicLink(Path.Combine(_root, "real", "sub", "host"), _canary.Path);
        using var root = BeneathRoot.Open(_root);

        using (var parent = root.OpenParent("real", createMissing: false, out var name))
        {
            parent.Remove(name);
        }

        Assert.False(Directory.Exists(Path.Combine(_root, "real")));
        _canary.AssertUntouched();
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void TryOpenDirectory_IsNullForASymlinkedDirectory(bool componentWalk)
    {
        BeneathRoot.Openat2Missing = componentWalk;
        using var root = BeneathRoot.Open(_root);

        Assert.Null(root.TryOpenDirectory("out"));
        Assert.Null(root.TryOpenDirectory("real/up"));
        using var real = root.TryOpenDirectory("real/sub");
        Assert.NotNull(real);
        using var self = root.TryOpenDirectory(string.Empty);
        Assert.NotNull(self);
    }
}
