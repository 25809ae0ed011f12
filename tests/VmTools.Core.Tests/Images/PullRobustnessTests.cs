using VmTools.Core.Images;
using VmTools.Core.Registry;
using VmTools.Core.State;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Images;

public sealed class RegistryFixture : IDisposable
{
    private RegistryServer? _server;

    public RegistryServer Server => _server ??= RegistryServer.StartPlain();

    public void Dispose() => _server?.Dispose();
}

/// <summary>Interruption, concurrency and limits, driven through the core against a real registry.</summary>
public sealed class PullRobustnessTests : IClassFixture<RegistryFixture>, IDisposable
{
    private readonly RegistryFixture _registry;
    private readonly TempDirectory _dir = new("vmtools-core");

    public PullRobustnessTests(RegistryFixture registry) => _registry = registry;

    public void Dispose() => _dir.Dispose();

    private ImageReference Repo(string name) => ImageReference.Parse($"{_registry.Server.Host}/core/{name}{Guid.NewGuid():N}"[..^20]);

    private static VmToolsPaths PathsUnder(string root) => new(Path.Combine(root, "state"), Path.Combine(root, "cache"), Path.Combine(root, "run"));

    private async Task<(string Disk, ImageReference Repo)> PublishAsync(string name, int megabytes, LayerCompression compression = LayerCompression.None)
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine(name + ".qcow2"), megabytes, seed: megabytes);
        var repo = Repo(name);
        var paths = PathsUnder(_dir.Combine("publisher-" + name));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        await new Qcow2CachePublisher(db, paths).PublishAsync(new PublishRequest(disk, repo, new[] { "t" }, new SourceRevision("abc", "clean"))
        {
            Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
            Compression = compression,
        }, null, CancellationToken.None);
        return (disk, repo);
    }

    [Fact]
    public async Task InterruptedPull_ResumesAndDownloadsOnlyWhatIsMissing()
    {
        var (disk, repo) = await PublishAsync("resume", 64);
        var paths = PathsUnder(_dir.Combine("puller"));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var fetcher = new Qcow2CacheFetcher(db, paths);
        var options = new RegistryClientOptions { ChunkBytes = 4L << 20, Parallelism = 2 };
        using var stop = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.BytesDone > 24L << 20) stop.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fetcher.FetchAsync(new FetchRequest(repo, new[] { "t" }) { ClientOptions = options }, progress, stop.Token));
        Assert.Empty(Directory.GetDirectories(paths.ImageStoreDirectory));

        var entry = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "t" }) { ClientOptions = options }, null, CancellationToken.None);
        Assert.Equal(CacheStatus.Pulled, entry.Status);
        Assert.InRange(entry.BytesDownloaded, 1, new FileInfo(disk).Length - (16L << 20));
        Assert.True(TestDisks.SameBytes(disk, entry.Path!));
        Assert.Empty(Directory.GetFileSystemEntries(paths.DownloadDirectory));
    }

    [Fact]
    public async Task ConcurrentPullsOfOneImage_AreJoined_OnlyOneDownloads()
    {
        var (disk, repo) = await PublishAsync("join", 32);
        var paths = PathsUnder(_dir.Combine("joined"));
        paths.EnsureCreated();
        async Task<Qcow2CacheEntry> Pull()
        {
            using var db = StateDb.Open(paths.DatabasePath);
            return await new Qcow2CacheFetcher(db, paths).FetchAsync(new FetchRequest(repo, new[] { "t" }), null, CancellationToken.None);
        }

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(Pull)));
        Assert.Single(results, r => r.Status == CacheStatus.Pulled);
        Assert.Equal(3, results.Count(r => r.Status == CacheStatus.Hit && r.BytesDownloaded == 0));
        Assert.All(results, r => Assert.Equal(results[0].Path, r.Path));
        Assert.True(TestDisks.SameBytes(disk, results[0].Path!));
    }

    [Fact]
    public async Task ManifestOverTheLimit_IsRefused()
    {
        var (_, repo) = await PublishAsync("big-manifest", 1);
        var paths = PathsUnder(_dir.Combine("limit"));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => new Qcow2CacheFetcher(db, paths).FetchAsync(
            new FetchRequest(repo, new[] { "t" }) { ClientOptions = new RegistryClientOptions { MaxManifestBytes = 64 } }, null, CancellationToken.None));
        Assert.Equal("RegistryManifestTooLarge", e.ErrorId);
    }

    [Fact]
    public async Task ZstdLayer_RoundTrips()
    {
        var (disk, repo) = await PublishAsync("zstd", 9, LayerCompression.Zstd);
        var paths = PathsUnder(_dir.Combine("zstd-pull"));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var entry = await new Qcow2CacheFetcher(db, paths).FetchAsync(new FetchRequest(repo, new[] { "t" }), null, CancellationToken.None);
        Assert.Equal(CacheStatus.Pulled, entry.Status);
        Assert.True(TestDisks.SameBytes(disk, entry.Path!));
    }

    [Fact]
    public async Task MultiArchIndex_KeepsBothPlatforms_AndPullSelectsTheAskedOne()
    {
        var amd = TestDisks.CreateQcow2(_dir.Combine("amd.qcow2"), 2, seed: 30);
        var arm = TestDisks.CreateQcow2(_dir.Combine("arm.qcow2"), 2, seed: 31);
        var repo = Repo("multiarch");
        var paths = PathsUnder(_dir.Combine("multi"));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var publisher = new Qcow2CachePublisher(db, paths);
        foreach (var (file, platform) in new[] { (amd, "linux/amd64"), (arm, "linux/arm64") })
        {
            await publisher.PublishAsync(new PublishRequest(file, repo, new[] { "multi" }, new SourceRevision("abc", "clean")) { Platform = OciPlatform.Parse(platform), AsIndex = true }, null, CancellationToken.None);
        }

        var inspect = Programs.MustRun("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{repo}:multi");
        Assert.Contains("\"arm64\"", inspect);
        Assert.Contains("\"amd64\"", inspect);
        var pullPaths = PathsUnder(_dir.Combine("multi-pull"));
        using var pullDb = StateDb.Open(pullPaths.EnsureCreated().DatabasePath);
        var entry = await new Qcow2CacheFetcher(pullDb, pullPaths).FetchAsync(new FetchRequest(repo, new[] { "multi" }) { Platform = OciPlatform.Parse("linux/arm64") }, null, CancellationToken.None);
        Assert.True(TestDisks.SameBytes(arm, entry.Path!));
    }

    [Fact]
    public async Task SameInput_PublishesTheSameDigest()
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine("det.qcow2"), 2, seed: 40);
        var paths = PathsUnder(_dir.Combine("det"));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var request = new PublishRequest(disk, Repo("det"), new[] { "a" }, new SourceRevision("abc", "clean")) { Created = DateTimeOffset.FromUnixTimeSeconds(1) };
        var a = await new Qcow2CachePublisher(db, paths).PublishAsync(request, null, CancellationToken.None);
        var otherPaths = PathsUnder(_dir.Combine("det2"));
        using var db2 = StateDb.Open(otherPaths.EnsureCreated().DatabasePath);
        var b = await new Qcow2CachePublisher(db2, otherPaths).PublishAsync(request with { Repository = Repo("det-b") }, null, CancellationToken.None);
        Assert.Equal(a.Digest, b.Digest);
        Assert.Equal(a.LayerDigest, b.LayerDigest);
    }

    private sealed class Progress(Action<TransferProgress> report) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => report(value);
    }
}
