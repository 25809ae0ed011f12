using VmTools.Core.CloudInit.Iso9660;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>Trees the writer must refuse, each with its own ErrorId, leaving no image or temp file behind.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class IsoWriterBadInputTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-isobad");

    public void Dispose() => _temp.Dispose();

    private string Output => _temp.Combine("out", "seed.iso");

    private async Task<VmToolsException> FailsAsync(Func<IsoContent> build)
    {
        Directory.CreateDirectory(_temp.Combine("out"));
        var e = Assert.Throws<VmToolsException>(() => IsoImageWriter.Write(build(), Output, new IsoImageOptions(), null, TestContext.Current.CancellationToken));
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Combine("out")));
        return e;
    }

    [Theory]
    [InlineData("a-name-that-is-exactly-sixty-five-characters-long-which-joliet-xx")]
    [InlineData("what?")]
    [InlineData("semi;colon")]
    [InlineData("back\\slash/inside")] // the backslash splits into a path, "inside" is fine: tested separately below
    [InlineData("colon:name")]
    [InlineData("tab\tname")]
    [InlineData("emoji-\U0001F600")]
    public async Task NameJolietCannotHold_IsIsoFileNameInvalid(string name)
    {
        if (name.Contains('\\')) name = "star*";
        var e = await FailsAsync(() => new IsoContent().AddBytes("dir/" + name, new byte[] { 1 }));
        Assert.Equal("IsoFileNameInvalid", e.ErrorId);
        Assert.Equal(FailureKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public async Task SixtyFourCharacterName_IsAccepted()
    {
        Directory.CreateDirectory(_temp.Combine("out"));
        var name = new string('n', 64);
        var iso = IsoImageWriter.Write(new IsoContent().AddBytes(name, new byte[] { 1 }), Output, new IsoImageOptions(), null, TestContext.Current.CancellationToken);
        Assert.Contains("/" + name, IsoReaders.Find(iso.Path, "-J"));
    }

    [Fact]
    public async Task SourceTreeWithTooLongName_IsIsoFileNameInvalid()
    {
        var src = Directory.CreateDirectory(_temp.Combine("src")).FullName;
        File.WriteAllText(Path.Combine(src, new string('x', 65)), "x");
        var e = await FailsAsync(() => new IsoContent().AddTree(src));
        Assert.Equal("IsoFileNameInvalid", e.ErrorId);
    }

    [Fact]
    public async Task TwoFilesOnOnePath_IsIsoNameCollision()
    {
        var a = _temp.Combine("a.txt");
        File.WriteAllText(a, "a");
        var e = await FailsAsync(() => new IsoContent().AddFile("certs/client.crt", a).AddBytes("certs//./client.crt", new byte[] { 2 }));
        Assert.Equal("IsoNameCollision", e.ErrorId);
        Assert.Equal(FailureKind.ResourceExists, e.Kind);
    }

    [Fact]
    public async Task FileWhereADirectoryIs_IsIsoNameCollision()
    {
        var e = await FailsAsync(() => new IsoContent().AddBytes("certs", new byte[] { 1 }).AddBytes("certs/client.crt", new byte[] { 2 }));
        Assert.Equal("IsoNameCollision", e.ErrorId);
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("payload/../../outside")]
    [InlineData("/")]
    public async Task PathLeavingTheRoot_IsIsoPathEscapesRoot(string isoPath)
    {
        var e = await FailsAsync(() => new IsoContent().AddBytes(isoPath, new byte[] { 1 }));
        Assert.Equal("IsoPathEscapesRoot", e.ErrorId);
    }

    [Fact]
    public async Task SymlinkOutOfTheSourceDirectory_IsIsoPathEscapesRoot()
    {
        var src = Directory.CreateDirectory(_temp.Combine("src")).FullName;
        File.WriteAllText(_temp.Combine("secret"), "outside");
        File.CreateSymbolicLink(Path.Combine(src, "innocent.yaml"), "../secret");
        var e = await FailsAsync(() => new IsoContent().AddTree(src));
        Assert.Equal("IsoPathEscapesRoot", e.ErrorId);
    }

    [Fact]
    public async Task SymlinkInsideTheSourceDirectory_IsFollowed()
    {
        var src = Directory.CreateDirectory(_temp.Combine("src")).FullName;
        File.WriteAllText(Path.Combine(src, "real.yaml"), "inside");
        File.CreateSymbolicLink(Path.Combine(src, "alias.yaml"), "real.yaml");
        Directory.CreateDirectory(_temp.Combine("out"));
        var iso = IsoImageWriter.Write(new IsoContent().AddTree(src), Output, new IsoImageOptions(), null, TestContext.Current.CancellationToken);
        Assert.Equal("inside", Programs.MustRun(IsoReaders.IsoInfo, "-i", iso.Path, "-R", "-x", "/alias.yaml"));
    }

    [Fact]
    public async Task MissingSourceFile_IsIsoSourceNotFound()
    {
        var e = await FailsAsync(() => new IsoContent().AddFile("rpms/agent.rpm", _temp.Combine("nope.rpm")));
        Assert.Equal("IsoSourceNotFound", e.ErrorId);
        Assert.Equal(FailureKind.NotFound, e.Kind);
    }

    [Fact]
    public async Task SourceFileDeletedBeforeWriting_IsIsoSourceNotFound_AndTheTempFileIsGone()
    {
        var f = _temp.Combine("vanishing.rpm");
        File.WriteAllText(f, "x");
        var e = await FailsAsync(() =>
        {
            var content = new IsoContent().AddBytes("user-data", new byte[] { 1 }).AddFile("rpms/vanishing.rpm", f);
            File.Delete(f);
            return content;
        });
        Assert.Equal("IsoSourceNotFound", e.ErrorId);
    }

    [Fact]
    public async Task SourceFileGrowingWhileListed_IsIsoSourceChanged()
    {
        var f = _temp.Combine("growing.bin");
        File.WriteAllText(f, "x");
        var e = await FailsAsync(() =>
        {
            var content = new IsoContent().AddFile("growing.bin", f);
            File.AppendAllText(f, "more");
            return content;
        });
        Assert.Equal("IsoSourceChanged", e.ErrorId);
    }

    [Fact]
    public async Task FileOfFourGiB_IsIsoFileTooLarge()
    {
        // One extent's 32-bit length ends at 4 GiB - 1; multi-extent files (ISO level 3) are not written.
        var f = _temp.Combine("huge.img");
        using (var s = File.Create(f)) s.SetLength(1L << 32);
        var e = await FailsAsync(() => new IsoContent().AddFile("huge.img", f));
        Assert.Equal("IsoFileTooLarge", e.ErrorId);
        Assert.Equal(FailureKind.LimitsExceeded, e.Kind);
    }

    [Fact]
    public async Task NineDirectoryLevels_IsIsoDirectoryTooDeep()
    {
        var e = await FailsAsync(() => new IsoContent().AddBytes("1/2/3/4/5/6/7/8/file", new byte[] { 1 }));
        Assert.Equal("IsoDirectoryTooDeep", e.ErrorId);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("seventeen-chars-x")]
    public async Task BadVolumeLabel_IsIsoVolumeLabelInvalid(string label)
    {
        Directory.CreateDirectory(_temp.Combine("out"));
        var e = Assert.Throws<VmToolsException>(() => IsoImageWriter.Write(new IsoContent(), Output, new IsoImageOptions { VolumeLabel = label }, null, TestContext.Current.CancellationToken));
        Assert.Equal("IsoVolumeLabelInvalid", e.ErrorId);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Combine("out")));
    }

    [Fact]
    public void BadSourceDateEpoch_IsSourceDateEpochInvalid()
    {
        var e = Assert.Throws<VmToolsException>(() => IsoImageOptions.FromEnvironment(n => n == "SOURCE_DATE_EPOCH" ? "yesterday" : null));
        Assert.Equal("SourceDateEpochInvalid", e.ErrorId);
    }

    [Fact]
    public async Task MissingOutputDirectory_IsIsoOutputDirectoryNotFound()
    {
        var e = Assert.Throws<VmToolsException>(() => IsoImageWriter.Write(new IsoContent(), _temp.Combine("no", "such", "seed.iso"), new IsoImageOptions(), null, TestContext.Current.CancellationToken));
        Assert.Equal("IsoOutputDirectoryNotFound", e.ErrorId);
    }

    [Fact]
    public async Task FailedWrite_KeepsThePreviousImage()
    {
        Directory.CreateDirectory(_temp.Combine("out"));
        File.WriteAllText(Output, "previous image");
        var f = _temp.Combine("vanishing.rpm");
        File.WriteAllText(f, "x");
        var content = new IsoContent().AddFile("vanishing.rpm", f);
        File.Delete(f);
        Assert.Throws<VmToolsException>(() => IsoImageWriter.Write(content, Output, new IsoImageOptions(), null, TestContext.Current.CancellationToken));
        Assert.Equal("previous image", File.ReadAllText(Output));
        Assert.Single(Directory.GetFileSystemEntries(_temp.Combine("out")));
    }
}
