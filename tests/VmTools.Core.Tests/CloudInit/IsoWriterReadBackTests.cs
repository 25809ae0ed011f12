using System.Text;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>What VmTools writes, read back by isoinfo and xorriso: names, modes and bytes.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class IsoWriterReadBackTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-iso");

    public void Dispose() => _temp.Dispose();

    private const UnixFileMode Mode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Mode0755 = (UnixFileMode)0x1ED;

    /// <summary>A seed-like tree: long lowercase names, nesting, an executable, a key with 0600, an empty file, a name needing a CE area.</summary>
    private string MakeSourceTree()
    {
        var src = _temp.Combine("src");
        Directory.CreateDirectory(src);
        File.WriteAllText(Path.Combine(src, "user-data"), "#cloud-config\nruncmd:\n  - [echo, hello]\n");
        File.WriteAllText(Path.Combine(src, "meta-data"), "instance-id: i-1\nlocal-hostname: vm1\n");
        File.WriteAllText(Path.Combine(src, "network-config"), "version: 2\n");
        var cfg = Directory.CreateDirectory(Path.Combine(src, "flightctl-config", "certs", "nested-level-three", "four")).FullName;
        File.WriteAllText(Path.Combine(src, "flightctl-config", "config.yaml"), "server: https://example\n");
        File.WriteAllText(Path.Combine(src, "flightctl-config", "certs", "client-enrollment.key"), "KEY");
        File.SetUnixFileMode(Path.Combine(src, "flightctl-config", "certs", "client-enrollment.key"), Mode0600);
        File.WriteAllText(Path.Combine(src, "flightctl-config", "setup-flightctl.sh"), "#!/bin/sh\necho ok\n");
        File.SetUnixFileMode(Path.Combine(src, "flightctl-config", "setup-flightctl.sh"), Mode0755);
        File.WriteAllBytes(Path.Combine(cfg, "empty"), Array.Empty<byte>());
        File.WriteAllText(Path.Combine(cfg, "MixedCase.Name.With.Dots.txt"), "dots");
        // 60 three-byte characters: a 180-byte Rock Ridge name, which no longer fits in the record.
        File.WriteAllText(Path.Combine(cfg, new string('\u20ac', 60)), "euro");
        var random = new byte[3 * 2048 + 17];
        new Random(7).NextBytes(random);
        File.WriteAllBytes(Path.Combine(src, "flightctl-config", "payload.bin"), random);
        return src;
    }

    private CloudInitIso Write(string src, string name = "seed.iso", IsoImageOptions? options = null)
        => IsoImageWriter.Write(new IsoContent().AddTree(src), _temp.Combine(name), options ?? new IsoImageOptions(), null, TestContext.Current.CancellationToken);

    [Fact]
    public async Task IsoInfo_ReportsCidataLabel_Joliet_AndRockRidge()
    {
        var iso = Write(MakeSourceTree());
        var d = Programs.MustRun(IsoReaders.IsoInfo, "-d", "-i", iso.Path);
        Assert.Contains("Volume id: cidata", d);
        Assert.Contains("Joliet with UCS level 3 found", d);
        Assert.Contains("Rock Ridge signatures version 1 found", d);
        Assert.Contains("Logical block size is: 2048", d);
        Assert.Contains($"Volume size is: {iso.Size / 2048}", d);
        Assert.Equal(iso.Size, new FileInfo(iso.Path).Length);
    }

    [Fact]
    public async Task RockRidgeAndJolietListings_NameEveryFileAndDirectory()
    {
        var src = MakeSourceTree();
        var iso = Write(src);
        var expected = IsoReaders.Tree(src).Keys.Select(k => "/" + k).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, IsoReaders.Find(iso.Path, "-R"));
        // isoinfo prints Joliet characters beyond Latin-1 as '_' (its own limit; genisoimage's images read the same).
        Assert.Equal(expected.Select(IsoReaders.AsIsoInfoShowsJoliet).OrderBy(k => k, StringComparer.Ordinal), IsoReaders.Find(iso.Path, "-J"));
        Assert.Equal(IsoReaders.Tree(src).Where(e => !e.Value.Dir).Select(e => "/" + e.Key).OrderBy(k => k, StringComparer.Ordinal), iso.Files.OrderBy(k => k, StringComparer.Ordinal));
    }

    [Fact]
    public async Task IsoInfoExtract_ReturnsEveryFileByteIdentical_UnderBothNameSets()
    {
        var src = MakeSourceTree();
        var iso = Write(src);
        foreach (var (rel, entry) in IsoReaders.Tree(src).Where(e => !e.Value.Dir))
        {
            Assert.Equal(entry.Hash, IsoReaders.ExtractHash(iso.Path, "-R", "/" + rel));
            if (rel.All(char.IsAscii)) Assert.Equal(entry.Hash, IsoReaders.ExtractHash(iso.Path, "-J", "/" + rel));
        }
    }

    [Fact]
    public async Task IsoInfoLongListing_ShowsRockRidgeModes()
    {
        var src = MakeSourceTree();
        var iso = Write(src);
        var listing = Programs.MustRun(IsoReaders.IsoInfo, "-i", iso.Path, "-R", "-l");
        Assert.Matches(@"-rw------- .* client-enrollment\.key", listing);
        Assert.Matches(@"-rwxr-xr-x .* setup-flightctl\.sh", listing);
        Assert.Matches(@"dr-?[-w]x.* nested-level-three", listing);
    }

    [Fact]
    public async Task XorrisoExtract_RebuildsTheTree_WithModesAndBytes()
    {
        var src = MakeSourceTree();
        var iso = Write(src);
        var outDir = _temp.Combine("out");
        Programs.MustRun(IsoReaders.Xorriso, "-osirrox", "on", "-indev", iso.Path, "-extract", "/", outDir);
        var expected = IsoReaders.Tree(src);
        var actual = IsoReaders.Tree(outDir);
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (k, v) in expected)
        {
            Assert.Equal(v.Hash, actual[k].Hash);
            if (!v.Dir) Assert.Equal(v.Mode, actual[k].Mode);
        }
    }

    [Fact]
    public async Task Xorriso_FindsNoProblemsInTheImage()
    {
        var iso = Write(MakeSourceTree());
        // -check_media reads every block; -abort_on FAILURE makes any SORRY/FAILURE message a non-zero exit.
        var (code, stdout, stderr) = Programs.Run(IsoReaders.Xorriso, "-abort_on", "SORRY", "-return_with", "SORRY", "32", "-indev", iso.Path, "-find", "/", "-exec", "lsdl");
        Assert.True(code == 0, $"xorriso complained (exit {code}): {stderr}{stdout}");
        Assert.DoesNotContain("WARNING", stderr);
        Assert.DoesNotContain("SORRY", stderr);
        // xorriso prefers Rock Ridge: long lowercase names and the recorded modes prove it loaded them.
        Assert.Contains("-rw------- ", stdout.Split('\n').Single(l => l.EndsWith("/flightctl-config/certs/client-enrollment.key'", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Listings_MatchGenisoimagesImageOfTheSameDirectory()
    {
        var src = MakeSourceTree();
        var ours = Write(src);
        var reference = _temp.Combine("genisoimage.iso");
        Programs.MustRun(IsoReaders.GenIsoImage, "-quiet", "-o", reference, "-V", "cidata", "-J", "-r", src);
        Assert.Equal(IsoReaders.Find(reference, "-R"), IsoReaders.Find(ours.Path, "-R"));
        Assert.Equal(IsoReaders.Find(reference, "-J"), IsoReaders.Find(ours.Path, "-J"));
        foreach (var file in ours.Files)
        {
            Assert.Equal(IsoReaders.ExtractHash(reference, "-R", file), IsoReaders.ExtractHash(ours.Path, "-R", file));
        }

        var volume = (string iso) => Programs.MustRun(IsoReaders.IsoInfo, "-d", "-i", iso).Split('\n').Single(l => l.StartsWith("Volume id:", StringComparison.Ordinal));
        Assert.Equal(volume(reference), volume(ours.Path));
    }

    [Fact]
    public async Task ManyFiles_SpanSeveralDirectorySectors_AndAllReadBack()
    {
        var src = _temp.Combine("many");
        Directory.CreateDirectory(src);
        for (var i = 0; i < 300; i++) File.WriteAllText(Path.Combine(src, $"package-{i:D3}-with-a-long-lowercase-name.rpm"), "rpm " + i);
        var iso = Write(src);
        var names = IsoReaders.Find(iso.Path, "-R");
        Assert.Equal(300, names.Length);
        Assert.Equal(300, IsoReaders.Find(iso.Path, "-J").Length);
        Assert.Equal("rpm 299", Programs.MustRun(IsoReaders.IsoInfo, "-i", iso.Path, "-R", "-x", "/package-299-with-a-long-lowercase-name.rpm"));
    }

    [Fact]
    public async Task IdenticalInput_GivesIdenticalBytes_AndTheEpochChangesThem()
    {
        var src = MakeSourceTree();
        var a = Write(src, "a.iso");
        // Touching every source file must not matter: the image carries the fixed timestamp.
        foreach (var f in Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories)) File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-3));
        var b = Write(src, "b.iso");
        Assert.Equal(IsoReaders.HashFile(a.Path), IsoReaders.HashFile(b.Path));

        var dated = Write(src, "c.iso", IsoImageOptions.FromEnvironment(n => n == "SOURCE_DATE_EPOCH" ? "1700000000" : null));
        Assert.NotEqual(IsoReaders.HashFile(a.Path), IsoReaders.HashFile(dated.Path));
        Assert.Contains("Creation Time: 2023111422132000", Programs.MustRun(IsoReaders.Xorriso, "-indev", dated.Path, "-pvd_info"));
        Assert.Contains("Creation Time: 2000010100000000", Programs.MustRun(IsoReaders.Xorriso, "-indev", a.Path, "-pvd_info"));
    }

    [Fact]
    public async Task Image_IsMode0600_AndNoTempFileRemains()
    {
        var iso = Write(MakeSourceTree());
        Assert.Equal(Mode0600, File.GetUnixFileMode(iso.Path));
        Assert.Equal(new[] { "seed.iso" }, Directory.GetFiles(_temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task GeneratedBytes_AndStreamedFiles_Mix()
    {
        var payload = _temp.Combine("agent.rpm");
        File.WriteAllBytes(payload, Encoding.ASCII.GetBytes("RPM"));
        var content = new IsoContent()
            .AddBytes("user-data", Encoding.UTF8.GetBytes("#cloud-config\n"))
            .AddFile("payload/rpms/agent.rpm", payload, Mode0600);
        var iso = IsoImageWriter.Write(content, _temp.Combine("mixed.iso"), new IsoImageOptions(), null, TestContext.Current.CancellationToken);
        Assert.Equal(new[] { "/payload/rpms/agent.rpm", "/user-data" }, iso.Files);
        Assert.Equal("#cloud-config\n", Programs.MustRun(IsoReaders.IsoInfo, "-i", iso.Path, "-R", "-x", "/user-data"));
        Assert.Equal("RPM", Programs.MustRun(IsoReaders.IsoInfo, "-i", iso.Path, "-J", "-x", "/payload/rpms/agent.rpm"));
    }
}
