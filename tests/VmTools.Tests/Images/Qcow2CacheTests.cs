using System.Formats.Tar;
using System.Management.Automation;
using VmTools.TestSupport;

namespace VmTools.Tests.Images;

public sealed class Qcow2CacheTests : IClassFixture<PlainRegistryFixture>
{
    private readonly PlainRegistryFixture _registry;

    public Qcow2CacheTests(PlainRegistryFixture registry) => _registry = registry;

    private string Repo(string name) => $"{_registry.Server.Host}/vmtools-test/{name}-{Guid.NewGuid():N}"[..^24];

    private static object? Prop(PSObject o, string name) => o.Properties[name]?.Value;

    [Fact]
    public void Save_ThenSkopeoCopy_ReadsByteIdenticalDiskInContainerDiskLayout()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("disk.qcow2"), 12);
        var repo = Repo("skopeo");
        var result = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag t1", disk, repo).Single();
        Assert.Equal(repo + ":t1", Prop(result, "Reference"));

        var inspect = Programs.MustRun("skopeo", "inspect", "--tls-verify=false", $"docker://{repo}:t1");
        Assert.Contains("org.vmtools.qcow2.source-commit", inspect);
        Assert.Contains((string)Prop(result, "Digest")!, inspect);

        var dir = s.Work.Combine("skopeo-dir");
        Programs.MustRun("skopeo", "copy", "--quiet", "--src-tls-verify=false", $"docker://{repo}:t1", "dir:" + dir);
        var layerFile = Path.Combine(dir, ((string)Prop(result, "LayerDigest")!)["sha256:".Length..]);
        var names = new List<string>();
        using (var reader = new TarReader(File.OpenRead(layerFile)))
        {
            TarEntry? e;
            while ((e = reader.GetNextEntry()) is not null)
            {
                names.Add($"{e.EntryType}:{e.Name}" + (e.EntryType == TarEntryType.HardLink ? "->" + e.LinkName : string.Empty));
                if (e.Name == "disk/disk.qcow2")
                {
                    Assert.Equal(107, e.Uid);
                    e.ExtractToFile(s.Work.Combine("extracted.qcow2"), overwrite: true);
                }
            }
        }

        Assert.Contains("RegularFile:disk/disk.qcow2", names);
        Assert.Contains("HardLink:qcow2/disk.qcow2->disk/disk.qcow2", names);
        Assert.True(TestDisks.SameBytes(disk, s.Work.Combine("extracted.qcow2")));
    }

    [Fact]
    public void Get_AfterSave_InFreshState_PullsVerifiedThenHitsWithZeroBytes()
    {
        var repo = Repo("pull");
        using var disks = new TempDirectory("vmtools-disk");
        var disk = TestDisks.CreateQcow2(disks.Combine("disk.qcow2"), 24, seed: 2);
        using (var publisher = new CacheSession())
        {
            publisher.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag base-qcow2-abc1234", disk, repo);
        }

        using var s = new CacheSession();
        var first = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag base-qcow2-abc1234", repo).Single();
        Assert.Equal("Pulled", Prop(first, "Status")!.ToString());
        Assert.True((long)Prop(first, "BytesDownloaded")! >= new FileInfo(disk).Length);
        Assert.True(TestDisks.SameBytes(disk, (string)Prop(first, "Path")!));
        Assert.StartsWith(s.StoreDirectory, (string)Prop(first, "Path")!);
        Assert.Empty(Directory.GetFileSystemEntries(s.PartialDirectory));

        var second = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag base-qcow2-abc1234", repo).Single();
        Assert.Equal("Hit", Prop(second, "Status")!.ToString());
        Assert.Equal(0L, Prop(second, "BytesDownloaded"));
        Assert.Equal(Prop(first, "Digest"), Prop(second, "Digest"));

        var stats = s.Ps.Invoke("Get-Qcow2CacheStatistics").Single();
        Assert.Equal(1L, Prop(stats, "Hits"));
        Assert.Equal(1L, Prop(stats, "Pulls"));
        Assert.True((long)Prop(stats, "BytesDownloaded")! > 0);
    }

    [Fact]
    public void Get_ReferenceFormatImageFromSkopeo_GzipLayerWithQcow2Path_IsPulled()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("ref.qcow2"), 3, seed: 3);
        var repo = Repo("reference");
        HandMadeImage.Push(s.Work.Path, repo + ":base-qcow2-latest", new[]
        {
            new HandMadeImage.Entry("qcow2/", Type: TarEntryType.Directory),
            new HandMadeImage.Entry("qcow2/disk.qcow2", disk),
        });
        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag base-qcow2-latest -Destination bin/output/qcow2/disk.qcow2", repo).Single();
        Assert.Equal("Pulled", Prop(entry, "Status")!.ToString());
        Assert.Equal(s.Work.Combine("bin", "output", "qcow2", "disk.qcow2"), Prop(entry, "Path"));
        Assert.True(TestDisks.SameBytes(disk, s.Work.Combine("bin", "output", "qcow2", "disk.qcow2")));
    }

    [Fact]
    public void Get_KubeVirtContainerDiskUncompressed_IsPulledByRanges()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("kv.qcow2"), 20, seed: 4);
        var repo = Repo("kubevirt");
        HandMadeImage.Push(s.Work.Path, repo + ":v1", new[]
        {
            new HandMadeImage.Entry("disk/", Type: TarEntryType.Directory),
            new HandMadeImage.Entry("disk/fedora.qcow2", disk),
        }, gzip: false);
        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag v1", repo).Single();
        Assert.Equal("Pulled", Prop(entry, "Status")!.ToString());
        Assert.True(TestDisks.SameBytes(disk, (string)Prop(entry, "Path")!));
    }

    [Fact]
    public void Get_TamperedBlob_FailsWithDigestMismatch_CachesNothing_AndRerunSucceedsOnceRepaired()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("t.qcow2"), 16, seed: 5);
        var repo = Repo("tamper");
        var saved = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag t", disk, repo).Single();
        var blob = _registry.Server.BlobDataPath((string)Prop(saved, "LayerDigest")!);
        var original = File.ReadAllBytes(blob);
        var tampered = (byte[])original.Clone();
        tampered[tampered.Length / 2] ^= 0xff;
        File.WriteAllBytes(blob, tampered);

        using var fresh = new CacheSession();
        var error = fresh.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag t", repo);
        Assert.Equal("RegistryDigestMismatch,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.False(Directory.Exists(fresh.StoreDirectory) && Directory.EnumerateFileSystemEntries(fresh.StoreDirectory).Any());
        Assert.Empty(Directory.GetFileSystemEntries(fresh.PartialDirectory));

        File.WriteAllBytes(blob, original);
        var entry = fresh.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag t", repo).Single();
        Assert.Equal("Pulled", Prop(entry, "Status")!.ToString());
        Assert.True(TestDisks.SameBytes(disk, (string)Prop(entry, "Path")!));
    }

    [Fact]
    public void Save_UnchangedImageAgain_UploadsZeroBlobBytes()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("d.qcow2"), 10, seed: 6);
        var repo = Repo("repush");
        var first = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag a", disk, repo).Single();
        Assert.True((long)Prop(first, "BytesUploaded")! > new FileInfo(disk).Length);
        var again = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag b", disk, repo).Single();
        Assert.Equal(0L, Prop(again, "BytesUploaded"));
        Assert.Equal(2, Prop(again, "BlobsSkipped"));
        Assert.Equal(Prop(first, "Digest"), Prop(again, "Digest"));
    }

    [Fact]
    public void Save_ToAnotherRepository_MountsInsteadOfUploading()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("m.qcow2"), 10, seed: 7);
        var repoA = Repo("mount-a");
        var repoB = Repo("mount-b");
        s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag a", disk, repoA);
        var b = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag a", disk, repoB).Single();
        Assert.Equal(0L, Prop(b, "BytesUploaded"));
        Assert.Equal(2, Prop(b, "BlobsMounted"));
        Programs.MustRun("skopeo", "inspect", "--tls-verify=false", $"docker://{repoB}:a");
    }

    [Fact]
    public void Save_QcowWithBackingFile_IsRefused()
    {
        using var s = new CacheSession();
        var basePath = TestDisks.CreateQcow2(s.Work.Combine("base.qcow2"), 1);
        var overlay = TestDisks.CreateQcow2(s.Work.Combine("overlay.qcow2"), 0, backingFile: basePath);
        var error = s.Ps.ExpectError("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag x", overlay, Repo("backing"));
        Assert.Equal("Qcow2ImageUnsafe,VmTools.Commands.SaveQcow2CacheCommand", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Get_ImageWhoseDiskHasBackingFile_IsRefusedAndNotCached()
    {
        using var s = new CacheSession();
        var basePath = TestDisks.CreateQcow2(s.Work.Combine("base.qcow2"), 1);
        var overlay = TestDisks.CreateQcow2(s.Work.Combine("overlay.qcow2"), 0, backingFile: basePath);
        var repo = Repo("backing-pull");
        HandMadeImage.Push(s.Work.Path, repo + ":x", new[] { new HandMadeImage.Entry("qcow2/disk.qcow2", overlay) });
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag x", repo);
        Assert.Equal("Qcow2ImageUnsafe,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Empty(Directory.GetFileSystemEntries(s.StoreDirectory));
    }

    [Theory]
    [InlineData("external-data-file", "external data file")]
    [InlineData("unknown-incompatible-bit", "incompatible feature bit(s) 9")]
    [InlineData("raw-disk", "not a qcow2")]
    public void Get_ImageWhoseDiskPointsOutsideItself_IsQcow2ImageUnsafe_AndNotCached(string kind, string named)
    {
        using var s = new CacheSession();
        var qemuImg = RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        var disk = s.Work.Combine(kind + ".qcow2");
        switch (kind)
        {
            case "external-data-file":
                Programs.MustRun(qemuImg, "create", "-q", "-f", "qcow2", "-o", "data_file=" + s.Work.Combine("host.raw"), disk, "1M");
                break;
            case "unknown-incompatible-bit":
                TestDisks.CreateQcow2(disk, 1);
                using (var f = new FileStream(disk, FileMode.Open, FileAccess.ReadWrite))
                {
                    f.Position = 72 + 6; // incompatible_features, big-endian: bit 9 is in the seventh byte
                    f.WriteByte(0x02);
                }

                break;
            default:
                var raw = new byte[1 << 20];
                new Random(4).NextBytes(raw);
                File.WriteAllBytes(disk, raw);
                break;
        }

        var repo = Repo("unsafe");
        HandMadeImage.Push(s.Work.Path, repo + ":x", new[] { new HandMadeImage.Entry("qcow2/disk.qcow2", disk) });
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag x", repo);
        Assert.Equal("Qcow2ImageUnsafe,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, error.CategoryInfo.Category);
        Assert.Contains(named, error.Exception.Message);
        Assert.Empty(Directory.GetFileSystemEntries(s.StoreDirectory));
        Assert.Empty(Directory.GetFileSystemEntries(s.PartialDirectory));
    }

    [Fact]
    public void Get_WhatIf_SaysWhatItWouldPull_AndMovesNoBlobBytes()
    {
        var repo = Repo("whatif-get");
        using var disks = new TempDirectory("vmtools-disk");
        var disk = TestDisks.CreateQcow2(disks.Combine("disk.qcow2"), 4, seed: 12);
        string layerDigest;
        using (var publisher = new CacheSession())
        {
            layerDigest = (string)Prop(publisher.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag w", disk, repo).Single(), "LayerDigest")!;
        }

        using var s = new CacheSession();
        var r = s.Ps.Run("Get-Qcow2Cache -Repository $args[0] -Tag w -WhatIf -Verbose", repo);

        Assert.False(r.HadErrors, string.Join('\n', r.Errors));
        Assert.Empty(r.Output);
        Assert.Contains(r.Verbose, v => v.Contains(layerDigest, StringComparison.Ordinal) && v.Contains("not in the local store", StringComparison.Ordinal));
        Assert.Empty(Directory.GetFileSystemEntries(s.StoreDirectory));
        Assert.False(Directory.Exists(s.PartialDirectory) && Directory.EnumerateFileSystemEntries(s.PartialDirectory).Any());
        Assert.Equal(0L, Prop(s.Ps.Invoke("Get-Qcow2CacheStatistics").Single(), "BytesDownloaded"));

        // The same call without -WhatIf does pull: the dry run was not a miss.
        var pulled = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag w", repo).Single();
        Assert.Equal("Pulled", Prop(pulled, "Status")!.ToString());
        Assert.Equal(layerDigest, Prop(pulled, "LayerDigest"));
    }

    [Fact]
    public void Get_LayerEntryEscapingRoot_IsRefused()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("e.qcow2"), 1);
        var repo = Repo("escape");
        HandMadeImage.Push(s.Work.Path, repo + ":x", new[]
        {
            new HandMadeImage.Entry("disk/disk.qcow2", disk),
            new HandMadeImage.Entry("disk/../../etc/evil", disk),
        });
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag x", repo);
        Assert.Equal("ImageLayerPathEscapes,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Empty(Directory.GetFileSystemEntries(s.StoreDirectory));
    }

    [Fact]
    public void Get_UnknownLayerMediaType_IsRefusedBeforeDownload()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("u.qcow2"), 1);
        var repo = Repo("mediatype");
        HandMadeImage.Push(s.Work.Path, repo + ":x", new[] { new HandMadeImage.Entry("disk/disk.qcow2", disk) }, gzip: false, layerMediaType: "application/vnd.example.unknown");
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag x", repo);
        Assert.Equal("RegistryUnsupportedMediaType,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        var stats = s.Ps.Invoke("Get-Qcow2CacheStatistics").Single();
        Assert.Equal(0L, Prop(stats, "BytesDownloaded"));
    }

    [Fact]
    public void Get_MissingTags_IsMiss_AndTestAnswersFalse()
    {
        using var s = new CacheSession();
        var repo = Repo("missing");
        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0]", repo).Single();
        Assert.Equal("Miss", Prop(entry, "Status")!.ToString());
        Assert.Null(Prop(entry, "Path"));
        Assert.Equal(false, s.Ps.Invoke("Test-Qcow2Cache -Repository $args[0]", repo).Single().BaseObject);
    }

    [Theory]
    [InlineData("UPPER/case", "ImageReferenceInvalid")]
    [InlineData("127.0.0.1:1/repo:tag", "ImageReferenceHasTag")]
    [InlineData("repo@sha256:zz", "ImageReferenceInvalid")]
    public void Get_BadRepository_FailsWithSpecificErrorId(string repository, string errorId)
    {
        using var s = new CacheSession();
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0]", repository);
        Assert.Equal(errorId + ",VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Get_BuildOnMiss_BuildsPublishesThenOthersPull()
    {
        var repo = Repo("build");
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("built.qcow2"), 9, seed: 8);
        s.Ps.SetEnv("VMTOOLS_TEST_DISK", disk);
        var built = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag b1 -Build { $env:VMTOOLS_TEST_DISK }", repo).Single();
        Assert.Equal("Built", Prop(built, "Status")!.ToString());
        Assert.Equal(true, s.Ps.Invoke("Test-Qcow2Cache -Repository $args[0] -Tag b1", repo).Single().BaseObject);

        using var other = new CacheSession();
        var pulled = other.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag b1 -Build { throw 'must not build' }", repo).Single();
        Assert.Equal("Pulled", Prop(pulled, "Status")!.ToString());
        Assert.True(TestDisks.SameBytes(disk, (string)Prop(pulled, "Path")!));
    }

    [Fact]
    public void Get_Force_BuildsEvenWhenCached()
    {
        var repo = Repo("force");
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("f.qcow2"), 1, seed: 9);
        s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag f", disk, repo);
        s.Ps.SetEnv("VMTOOLS_TEST_DISK", disk);
        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag f -Force -Build { $env:VMTOOLS_TEST_DISK }", repo).Single();
        Assert.Equal("Built", Prop(entry, "Status")!.ToString());
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag f -Force", repo);
        Assert.Equal("Qcow2CacheForceNeedsBuild,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Save_WhatIf_PushesNothing()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("w.qcow2"), 1);
        var repo = Repo("whatif");
        var r = s.Ps.Run("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag w -WhatIf", disk, repo);
        Assert.Empty(r.Output);
        Assert.Equal(false, s.Ps.Invoke("Test-Qcow2Cache -Repository $args[0] -Tag w", repo).Single().BaseObject);
    }

    [Fact]
    public void RegistryDisabled_SaveAndGetUseTheLocalStoreOnly()
    {
        using var s = new CacheSession(new Dictionary<string, string?> { ["REGISTRY_CACHE"] = "false" });
        var disk = TestDisks.CreateQcow2(s.Work.Combine("l.qcow2"), 2, seed: 10);
        // An unreachable registry proves nothing is contacted.
        var repo = "127.0.0.1:9/vmtools/local-only";
        var saved = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag l", disk, repo).Single();
        Assert.Equal("Local", Prop(saved, "Destination"));
        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag l", repo).Single();
        Assert.Equal("Hit", Prop(entry, "Status")!.ToString());
        Assert.Equal("Local", Prop(entry, "Source"));
        Assert.True(TestDisks.SameBytes(disk, (string)Prop(entry, "Path")!));
    }

    [Fact]
    public void Tags_FollowGitCommitAndLatestOnlyWhenClean()
    {
        RealComponent.RequireProgram("git", "apt-get install git");
        using var s = new CacheSession(new Dictionary<string, string?> { ["QCOW2_CACHE_TAG"] = "ci-cache" });
        var repoDir = s.Work.Path;
        var env = new Dictionary<string, string> { ["GIT_AUTHOR_NAME"] = "t", ["GIT_AUTHOR_EMAIL"] = "t@e", ["GIT_COMMITTER_NAME"] = "t", ["GIT_COMMITTER_EMAIL"] = "t@e" };
        Programs.RunIn(repoDir, env, "git", "init", "-q");
        File.WriteAllText(Path.Combine(repoDir, ".gitignore"), "*.qcow2\n");
        Programs.RunIn(repoDir, env, "git", "add", ".gitignore");
        Programs.RunIn(repoDir, env, "git", "commit", "-q", "-m", "init");
        var commit = Programs.RunIn(repoDir, env, "git", "rev-parse", "--short", "HEAD").Stdout.Trim();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("g.qcow2"), 1, seed: 11);
        var repo = Repo("git");

        var clean = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1]", disk, repo).Single();
        Assert.Equal(new[] { $"ci-cache-{commit}", "ci-cache-latest" }, ((IEnumerable<string>)Prop(clean, "Tags")!).ToArray());

        File.WriteAllText(Path.Combine(repoDir, "dirty.txt"), "x");
        var dirty = s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1]", disk, repo).Single();
        Assert.Equal(new[] { $"ci-cache-{commit}" }, ((IEnumerable<string>)Prop(dirty, "Tags")!).ToArray());

        var got = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0]", repo).Single();
        Assert.Equal($"ci-cache-{commit}", Prop(got, "Tag"));
    }

    [Fact]
    public void TabCompletion_OffersKnownRepositoriesAndTags()
    {
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("c.qcow2"), 1, seed: 12);
        var repo = Repo("complete");
        s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag completion-tag", disk, repo);
        var line = $"Get-Qcow2Cache -Repository {repo} -Tag compl";
        var tags = s.Ps.Invoke("(TabExpansion2 $args[0] $args[0].Length).CompletionMatches.CompletionText", line).Select(o => o.ToString()).ToArray();
        Assert.Equal(new[] { "completion-tag" }, tags);
        var repoLine = $"Get-Qcow2Cache -Repository {_registry.Server.Host}/vmtools-test/compl";
        var repos = s.Ps.Invoke("(TabExpansion2 $args[0] $args[0].Length).CompletionMatches.CompletionText", repoLine).Select(o => o.ToString()).ToArray();
        Assert.Contains(repo, repos);
    }
}
