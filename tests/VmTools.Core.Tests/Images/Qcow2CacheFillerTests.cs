using VmTools.Core.Images;
using VmTools.Core.Registry;
using VmTools.Core.State;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Images;

/// <summary>What Get-Qcow2Cache -Build does with a base built on a miss: real SQLite, real files, a real registry.</summary>
public sealed class Qcow2CacheFillerTests : IClassFixture<RegistryFixture>, IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly SourceRevision Dirty = new("abc1234", "dirty");

    private readonly RegistryFixture _registry;
    private readonly TempDirectory _dir = new("vmtools-fill");
    private readonly VmToolsPaths _paths;
    private readonly StateDb _db;

    public Qcow2CacheFillerTests(RegistryFixture registry)
    {
        _registry = registry;
        _paths = new VmToolsPaths(_dir.Combine("state"), _dir.Combine("cache"), _dir.Combine("run")).EnsureCreated();
        _db = StateDb.Open(_paths.DatabasePath);
    }

    public void Dispose()
    {
        _db.Dispose();
        _dir.Dispose();
    }

    private ImageReference Repo(string name) => ImageReference.Parse($"{_registry.Server.Host}/fill/{name}-{Guid.NewGuid():N}"[..^20]);

    private CacheFillRequest Request(string name, ImageReference repo, SourceRevision revision) => new(
        TestDisks.CreateQcow2(_dir.Combine(name + ".qcow2"), 1, seed: name.Length), repo, new[] { "base-qcow2-abc1234", "base-qcow2-latest" }, revision)
    {
        BuildTime = TimeSpan.FromSeconds(3),
        Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
    };

    /// <summary>Whether <paramref name="tag"/> resolves in the registry, asked from a state of its own so the local store cannot answer.</summary>
    private async Task<bool> RegistryHasAsync(ImageReference repo, string tag)
    {
        var paths = new VmToolsPaths(_dir.Combine("probe", "state"), _dir.Combine("probe", "cache"), _dir.Combine("probe", "run")).EnsureCreated();
        using var db = StateDb.Open(paths.DatabasePath);
        var entry = await new Qcow2CacheFetcher(db, paths).FetchAsync(new FetchRequest(repo, new[] { tag }) { PullAllowed = false }, null, Ct);
        return entry.Status != CacheStatus.Miss;
    }

    [Fact]
    public async Task Fill_DirtyTreeWithTheRevisionsTags_PublishesTheCommitTagOnly()
    {
        var repo = Repo("dirty");
        var entry = await new Qcow2CacheFiller(_db, _paths).FillAsync(Request("dirty", repo, Dirty) with { TagsFromRevision = true }, null, Ct);

        Assert.Equal(CacheStatus.Built, entry.Status);
        Assert.Equal("base-qcow2-abc1234", entry.Tag);
        Assert.True(await RegistryHasAsync(repo, "base-qcow2-abc1234"));
        Assert.False(await RegistryHasAsync(repo, "base-qcow2-latest"));
    }

    [Fact]
    public async Task Fill_DirtyTreeWithTagsTheCallerNamed_PublishesEveryTag()
    {
        var repo = Repo("named");
        await new Qcow2CacheFiller(_db, _paths).FillAsync(Request("named", repo, Dirty) with { TagsFromRevision = false }, null, Ct);

        Assert.True(await RegistryHasAsync(repo, "base-qcow2-abc1234"));
        Assert.True(await RegistryHasAsync(repo, "base-qcow2-latest"));
    }

    [Fact]
    public async Task Fill_Published_AnswersTheStoresVerifiedCopy_WithItsDigestAndBootFiles()
    {
        var request = Request("local", Repo("local"), new SourceRevision("abc1234", "clean"));
        var kernel = _dir.Combine("local.vmlinuz");
        File.WriteAllText(kernel, "kernel");
        request = request with { RegistryEnabled = false, BootFiles = new[] { new BootFile(kernel, "vmlinuz") } };

        var entry = await new Qcow2CacheFiller(_db, _paths).FillAsync(request, null, Ct);

        var stored = new ImageStore(_db, _paths).FindVerified(entry.LayerDigest!);
        Assert.NotNull(stored);
        Assert.Equal(stored.DiskPath, entry.Path);
        Assert.NotEqual(request.DiskPath, entry.Path);
        Assert.True(TestDisks.SameBytes(request.DiskPath, entry.Path!));
        Assert.StartsWith("sha256:", entry.Digest);
        Assert.Equal(kernel, entry.KernelPath);
        Assert.Null(entry.InitrdPath);
        Assert.Equal(new FileInfo(request.DiskPath).Length, entry.Size);
        Assert.True(entry.Duration >= request.BuildTime);
    }

    [Fact]
    public async Task Fill_WithoutPublish_RecordsTheBuild_AndAnswersTheBuiltDiskItself()
    {
        var repo = Repo("nopublish");
        var request = Request("nopublish", repo, new SourceRevision("abc1234", "clean")) with { Publish = false };

        var entry = await new Qcow2CacheFiller(_db, _paths).FillAsync(request, null, Ct);

        Assert.Equal(CacheStatus.Built, entry.Status);
        Assert.Equal("Build", entry.Source);
        Assert.Equal(request.DiskPath, entry.Path);
        Assert.Equal(repo.WithTag("base-qcow2-abc1234").ToString(), entry.Reference);
        Assert.Null(entry.Digest);
        var statistics = new CacheEventLog(_db).Summarize();
        Assert.Equal(1, statistics.Builds);
        Assert.Equal(0, statistics.Pushes);
        Assert.Equal(request.BuildTime, statistics.TimeBuilding);
        Assert.False(await RegistryHasAsync(repo, "base-qcow2-abc1234"));
    }
}
