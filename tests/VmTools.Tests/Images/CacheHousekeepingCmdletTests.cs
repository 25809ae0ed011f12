using System.Management.Automation;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Tests.Images;

/// <summary>Get-Qcow2CacheImage, Remove-Qcow2CacheImage and digest pins, through the built module in a hosted engine.</summary>
public sealed class CacheHousekeepingCmdletTests : IClassFixture<PlainRegistryFixture>
{
    private const string LocalRegistry = "127.0.0.1:9/vmtools"; // unreachable: with REGISTRY_CACHE=false nothing is contacted

    private readonly PlainRegistryFixture _registry;

    public CacheHousekeepingCmdletTests(PlainRegistryFixture registry) => _registry = registry;

    private static object? Prop(PSObject o, string name) => o.Properties[name]?.Value;

    private static CacheSession LocalSession() => new(new Dictionary<string, string?> { ["REGISTRY_CACHE"] = "false" });

    private static string SaveLocal(CacheSession s, string name, int seed)
    {
        var disk = TestDisks.CreateQcow2(s.Work.Combine(name + ".qcow2"), 2, seed);
        var saved = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag v1", disk, $"{LocalRegistry}/{name}").Single();
        return (string)Prop(saved, "LayerDigest")!;
    }

    private static VmToolsPaths PathsOf(CacheSession s) => new VmToolsPaths(s.Home.Combine("state"), s.Home.Combine("cache"), s.Home.Combine("run")).EnsureCreated();

    private static void VmOn(CacheSession s, string name, string imagePath)
    {
        var paths = PathsOf(s);
        using var db = StateDb.Open(paths.DatabasePath);
        new VmStore(db, paths).Insert(null, VmRecords.OnBase(paths.VmDirectory, name, imagePath));
    }

    private static string StoredPath(CacheSession s, string digest)
        => (string)Prop(s.Ps.Invoke("Get-Qcow2CacheImage -Digest $args[0]", digest).Single(), "Path")!;

    [Fact]
    public void GetImage_ListsEachStoredImage_WithItsReferences_AndTheVmsUsingIt()
    {
        using var s = LocalSession();
        var a = SaveLocal(s, "a", 1);
        var b = SaveLocal(s, "b", 2);
        VmOn(s, "vm-a", StoredPath(s, a));

        var all = s.Ps.Invoke("Get-Qcow2CacheImage");
        Assert.Equal(new[] { a, b }.Order(), all.Select(i => (string)Prop(i, "LayerDigest")!).Order());
        var imageA = all.Single(i => (string)Prop(i, "LayerDigest")! == a);
        Assert.Equal(new[] { "vm-a" }, (IEnumerable<string>)Prop(imageA, "UsedBy")!);
        Assert.Equal(new[] { $"{LocalRegistry}/a:v1" }, (IEnumerable<string>)Prop(imageA, "References")!);
        Assert.Equal(b, Prop(s.Ps.Invoke("Get-Qcow2CacheImage '*/b:*'").Single(), "LayerDigest"));
    }

    [Fact]
    public void KeepLatestZero_RemovesOnlyTheUnusedImage_WhatIfRemovesNothing_AndStatisticsCountTheEviction()
    {
        using var s = LocalSession();
        var a = SaveLocal(s, "a", 3);
        var b = SaveLocal(s, "b", 4);
        VmOn(s, "vm-a1", StoredPath(s, a));
        VmOn(s, "vm-a2", StoredPath(s, a));
        var pathB = StoredPath(s, b);

        s.Ps.Invoke("Remove-Qcow2CacheImage -KeepLatest 0 -WhatIf");
        Assert.Equal(2, s.Ps.Invoke("Get-Qcow2CacheImage").Count);

        var removed = s.Ps.Invoke("Remove-Qcow2CacheImage -KeepLatest 0 -PassThru");

        Assert.Equal(b, Prop(removed.Single(), "LayerDigest"));
        Assert.False(File.Exists(pathB));
        Assert.Equal(a, Prop(s.Ps.Invoke("Get-Qcow2CacheImage").Single(), "LayerDigest"));
        Assert.Equal(1L, Prop(s.Ps.Invoke("Get-Qcow2CacheStatistics").Single(), "Evictions"));
    }

    [Fact]
    public void PipedRemoval_OfAnImageInUse_WritesQcow2CacheImageInUse_AndContinues_ForceRemovesIt()
    {
        using var s = LocalSession();
        var a = SaveLocal(s, "a", 5);
        var b = SaveLocal(s, "b", 6);
        VmOn(s, "vm-a", StoredPath(s, a));

        var r = s.Ps.Run("Get-Qcow2CacheImage | Remove-Qcow2CacheImage -PassThru");

        var error = Assert.Single(r.Errors);
        Assert.Equal("Qcow2CacheImageInUse,VmTools.Commands.RemoveQcow2CacheImageCommand", error.FullyQualifiedErrorId);
        Assert.Contains("vm-a", error.Exception.Message);
        Assert.Equal(b, Prop(r.Output.Single(), "LayerDigest"));
        Assert.Equal(a, Prop(s.Ps.Invoke("Get-Qcow2CacheImage").Single(), "LayerDigest"));

        var forced = s.Ps.Invoke("Remove-Qcow2CacheImage -Digest $args[0] -Force -PassThru", a).Single();
        Assert.Equal(true, Prop(forced, "Forced"));
        Assert.Empty(s.Ps.Invoke("Get-Qcow2CacheImage"));
    }

    [Fact]
    public void OlderThan_TakesANumberAsDays()
    {
        using var s = LocalSession();
        SaveLocal(s, "fresh", 7);

        s.Ps.Invoke("Remove-Qcow2CacheImage -OlderThan 30");
        Assert.Single(s.Ps.Invoke("Get-Qcow2CacheImage")); // 30 ticks would have removed it

        s.Ps.Invoke("Remove-Qcow2CacheImage -OlderThan ([TimeSpan]::Zero)");
        Assert.Empty(s.Ps.Invoke("Get-Qcow2CacheImage"));
    }

    [Fact]
    public void LiteralsThatMatchNothing_AreNotFound_AndPatternsAreSilent()
    {
        using var s = LocalSession();
        SaveLocal(s, "a", 8);
        var missing = "sha256:" + new string('0', 64);

        Assert.Equal("Qcow2CacheImageNotFound,VmTools.Commands.GetQcow2CacheImageCommand", s.Ps.ExpectError("Get-Qcow2CacheImage -Digest $args[0]", missing).FullyQualifiedErrorId);
        Assert.Equal("Qcow2CacheImageNotFound,VmTools.Commands.RemoveQcow2CacheImageCommand", s.Ps.ExpectError("Remove-Qcow2CacheImage -Reference $args[0]", $"{LocalRegistry}/none:v1").FullyQualifiedErrorId);
        var silent = s.Ps.Run("Get-Qcow2CacheImage 'nothing/*'");
        Assert.Empty(silent.Output);
        Assert.Empty(silent.Errors);
        Assert.Single(s.Ps.Invoke("Get-Qcow2CacheImage"));
    }

    [Fact]
    public void Destination_OfAnImagePrunedAfterTheHit_IsQcow2CacheImageGone_AndWhatIfPlacesNothing()
    {
        using var s = LocalSession();
        var digest = SaveLocal(s, "gone", 3);
        var destination = s.Work.Combine("out", "disk.qcow2");

        var whatIf = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag v1 -Destination $args[1] -WhatIf", $"{LocalRegistry}/gone", destination).Single();
        Assert.Equal("Hit", Prop(whatIf, "Status")!.ToString());
        Assert.NotEqual(destination, Prop(whatIf, "Path"));
        Assert.False(File.Exists(destination));

        // Does to the index what a prune does right after the hit lets go of the lock: the store no longer holds the image.
        using (var db = StateDb.Open(PathsOf(s).DatabasePath))
        {
            db.Execute($$"""
                CREATE TRIGGER test_prune_after_hit AFTER INSERT ON events WHEN NEW.kind = 'hit' AND NEW.detail = '{{digest}}'
                BEGIN DELETE FROM image_refs WHERE layer_digest = NEW.detail; DELETE FROM images WHERE layer_digest = NEW.detail; END
                """);
        }

        var gone = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag v1 -Destination $args[1]", $"{LocalRegistry}/gone", destination);

        Assert.Equal("Qcow2CacheImageGone,VmTools.Commands.GetQcow2CacheCommand", gone.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, gone.CategoryInfo.Category);
        Assert.IsType<VmTools.Core.VmToolsException>(gone.Exception);
        Assert.False(File.Exists(destination));
    }

    [Fact]
    public void GetQcow2Cache_PinnedByDigest_PullsThatManifest_ThenHitsWithNoBytes()
    {
        var repo = $"{_registry.Server.Host}/vmtools-test/pin-{Guid.NewGuid():N}"[..^24];
        string digest;
        string disk;
        using (var publisher = new CacheSession())
        {
            disk = TestDisks.CreateQcow2(publisher.Work.Combine("pin.qcow2"), 4, seed: 9);
            digest = (string)Prop(publisher.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag p", disk, repo).Single(), "Digest")!;
            using var s = new CacheSession();
            var first = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0]", $"{repo}@{digest}").Single();
            var second = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Digest $args[1]", repo, digest).Single();

            Assert.Equal("Pulled", Prop(first, "Status")!.ToString());
            Assert.Equal(digest, Prop(first, "Digest"));
            Assert.True(TestDisks.SameBytes(disk, (string)Prop(first, "Path")!));
            Assert.Equal("Hit", Prop(second, "Status")!.ToString());
            Assert.Equal(0L, Prop(second, "BytesDownloaded"));
            Assert.Equal("Qcow2CacheDigestExclusive,VmTools.Commands.GetQcow2CacheCommand",
                s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Digest $args[1] -Tag p", repo, digest).FullyQualifiedErrorId);
        }
    }
}
