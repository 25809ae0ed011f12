using VmTools.Core.CloudInit;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>The seed directory writer replaces only what VmTools wrote: user folders are refused, and even forced keep every entry that is not a seed file.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SeedDirectoryTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-seeddir");

    public void Dispose() => _temp.Dispose();

    private static CloudInitConfig Plain(string host = "x") => CloudInitConfig.Create(new CloudInitInputs { Hostname = host });

    /// <summary>A folder like a home or project directory: a document, a hidden dotfile and a source tree.</summary>
    private string HomeLikeFolder()
    {
        var home = _temp.Combine("home");
        Directory.CreateDirectory(Path.Combine(home, "src", "app"));
        File.WriteAllText(Path.Combine(home, "thesis.txt"), "four years of work\n");
        File.WriteAllText(Path.Combine(home, ".bashrc"), "alias ll='ls -l'\n");
        File.WriteAllText(Path.Combine(home, "src", "app", "main.c"), "int main(void) { return 0; }\n");
        return home;
    }

    private static SortedDictionary<string, (bool Dir, UnixFileMode Mode, string? Hash)> Listing(string dir) => IsoReaders.Tree(dir);

    [Fact]
    public void HomeLikeFolderWithFiles_IsRefusedWithCloudInitOutputNotEmpty_NamingItsEntries_AndNothingChanges()
    {
        var home = HomeLikeFolder();
        var before = Listing(home);
        var e = Assert.Throws<VmToolsException>(() => NoCloudSeed.WriteDirectory(Plain(), home));
        Assert.Equal("CloudInitOutputNotEmpty", e.ErrorId);
        Assert.Equal(home, e.Target);
        Assert.Contains("thesis.txt", e.Message);
        Assert.Contains("src", e.Message);
        Assert.Contains("-Force", e.Message);
        Assert.Equal(before, Listing(home));
    }

    [Fact]
    public void FolderWithManyEntries_MessageNamesAFewAndCountsTheRest()
    {
        var dir = _temp.Combine("many");
        Directory.CreateDirectory(dir);
        for (var i = 0; i < 9; i++) File.WriteAllText(Path.Combine(dir, $"doc{i}.txt"), "x");
        var e = Assert.Throws<VmToolsException>(() => SeedDirectory.Plan(dir, force: false));
        Assert.Contains("holds 9 entries", e.Message);
        Assert.Contains("doc0.txt, doc1.txt, doc2.txt, doc3.txt, doc4.txt, and 4 more", e.Message);
        Assert.DoesNotContain("doc5.txt", e.Message);
    }

    [Fact]
    public void PriorSeed_IsReplaced_StaleSeedFilesGo()
    {
        var seed = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path), Hostname = "first" }), seed);
        Assert.True(Directory.Exists(Path.Combine(seed, NoCloudSeed.PayloadDirectory)));
        var plan = SeedDirectory.Plan(seed, force: false);
        Assert.Equal(new[] { ".vmtools-seed", "flightctl-config", "meta-data", "network-config", "user-data" }, plan.Replaced);
        NoCloudSeed.WriteDirectory(Plain("second"), plan);
        Assert.Equal(new[] { ".vmtools-seed", "meta-data", "network-config", "user-data" }, Listing(seed).Keys);
        Assert.Contains("\"second\"", File.ReadAllText(Path.Combine(seed, "meta-data")));
    }

    [Fact]
    public void SeedWrittenWithoutMarker_HoldingOnlySeedNames_IsReplaced()
    {
        var seed = _temp.Combine("old-seed");
        Directory.CreateDirectory(seed);
        File.WriteAllText(Path.Combine(seed, "user-data"), "#cloud-config\n");
        File.WriteAllText(Path.Combine(seed, "meta-data"), "instance-id: old\n");
        NoCloudSeed.WriteDirectory(Plain("new"), seed);
        Assert.Contains("\"new\"", File.ReadAllText(Path.Combine(seed, "meta-data")));
        Assert.True(File.Exists(Path.Combine(seed, SeedDirectory.MarkerName)));
    }

    [Fact]
    public void EmptyFolder_IsUsed_AndKeepsItsOwnMode()
    {
        var empty = _temp.Combine("empty");
        Directory.CreateDirectory(empty, (UnixFileMode)0x1ED);
        NoCloudSeed.WriteDirectory(Plain(), empty);
        Assert.Equal(new[] { ".vmtools-seed", "meta-data", "network-config", "user-data" }, Listing(empty).Keys);
        Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(Path.Combine(empty, "user-data")));
        // No staging or backup folders remain inside or beside it.
        Assert.Equal(new[] { "empty" }, Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void NewFolder_IsCreatedPrivate()
    {
        var seed = _temp.Combine("fresh", "seed");
        var plan = SeedDirectory.Plan(seed, force: false);
        Assert.False(plan.Exists);
        Assert.Equal("Create cloud-init seed directory", plan.Action);
        NoCloudSeed.WriteDirectory(Plain(), plan);
        Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(seed));
    }

    [Fact]
    public void Force_WithUnrelatedFiles_ReplacesSeedFilesOnly_AndUnrelatedFilesSurvive()
    {
        var home = HomeLikeFolder();
        File.WriteAllText(Path.Combine(home, "user-data"), "#cloud-config\n# an older hand-written seed\n");
        var before = Listing(home);
        var plan = SeedDirectory.Plan(home, force: true);
        Assert.Equal(new[] { "user-data" }, plan.Replaced);
        Assert.Equal(new[] { ".bashrc", "src", "thesis.txt" }, plan.Kept);
        Assert.Equal("Replace cloud-init seed files user-data (keeping 3 other entries: .bashrc, src, thesis.txt)", plan.Action);
        NoCloudSeed.WriteDirectory(Plain(), plan);
        var after = Listing(home);
        foreach (var (rel, entry) in before.Where(kv => kv.Key != "user-data")) Assert.Equal(entry, after[rel]);
        Assert.Contains("# Written by VmTools", File.ReadAllText(Path.Combine(home, "user-data")));
        Assert.Equal(before.Keys.Count + 3, after.Keys.Count); // + meta-data, network-config, marker
    }

    [Fact]
    public void MarkedSeedWithAFileTheUserAddedLater_IsReplaced_AndTheFileIsKept()
    {
        var seed = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(Plain("one"), seed);
        File.WriteAllText(Path.Combine(seed, "notes.md"), "mine\n");
        NoCloudSeed.WriteDirectory(Plain("two"), seed);
        Assert.Equal("mine\n", File.ReadAllText(Path.Combine(seed, "notes.md")));
        Assert.Contains("\"two\"", File.ReadAllText(Path.Combine(seed, "meta-data")));
    }

    [Fact]
    public void AFileInsteadOfADirectory_IsRefusedAndKept()
    {
        var file = _temp.Combine("seed");
        File.WriteAllText(file, "not a folder");
        var e = Assert.Throws<VmToolsException>(() => NoCloudSeed.WriteDirectory(Plain(), file, force: true));
        Assert.Equal("CloudInitOutputNotDirectory", e.ErrorId);
        Assert.Equal("not a folder", File.ReadAllText(file));
    }

    [Fact]
    public async Task ImageOfASeedDirectory_LeavesTheMarkerOff()
    {
        var seed = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(Plain(), seed);
        var iso = SeedImage.Write(seed, _temp.Combine("seed.iso"), new Core.CloudInit.Iso9660.IsoImageOptions(), overwrite: false, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(new[] { "/meta-data", "/network-config", "/user-data" }, iso.Files);
    }
}
