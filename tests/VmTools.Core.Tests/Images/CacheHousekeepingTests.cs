using System.Collections.Concurrent;
using VmTools.Core.Host;
using VmTools.Core.Images;
using VmTools.Core.Registry;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Images;

/// <summary>Listing, removing and pruning the local store, and pinning by digest: real SQLite, real files, a real registry.</summary>
public sealed class CacheHousekeepingTests : IClassFixture<RegistryFixture>, IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly RegistryFixture _registry;
    private readonly TempDirectory _dir = new("vmtools-prune");
    private readonly VmToolsPaths _paths;
    private readonly StateDb _db;

    public CacheHousekeepingTests(RegistryFixture registry)
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

    private ImageReference Repo(string name) => ImageReference.Parse($"{_registry.Server.Host}/prune/{name}-{Guid.NewGuid():N}"[..^20]);

    /// <summary>Publishes a disk from a separate state directory, so this test's store learns of it only by pulling.</summary>
    private async Task<(string Disk, ImageReference Repo, PublishResult Published)> PublishAsync(string name, int megabytes, int seed)
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine(name + ".qcow2"), megabytes, seed);
        var repo = Repo(name);
        var paths = new VmToolsPaths(_dir.Combine("pub-" + name, "state"), _dir.Combine("pub-" + name, "cache"), _dir.Combine("pub-" + name, "run")).EnsureCreated();
        using var db = StateDb.Open(paths.DatabasePath);
        var published = await new Qcow2CachePublisher(db, paths).PublishAsync(new PublishRequest(disk, repo, new[] { "t" }, new SourceRevision("abc", "clean"))
        {
            Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        }, null, Ct);
        return (disk, repo, published);
    }

    private async Task<Qcow2CacheEntry> PullAsync(ImageReference repo, string? digest = null)
        => await new Qcow2CacheFetcher(_db, _paths).FetchAsync(new FetchRequest(repo, new[] { "t" }) { ManifestDigest = digest }, null, Ct);

    /// <summary>A local image committed the way Adopt does, from a file of <paramref name="kilobytes"/> random bytes.</summary>
    private StoredImage Local(string name, int kilobytes, string repository)
    {
        var store = new ImageStore(_db, _paths);
        var digest = "sha256:" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name + Guid.NewGuid()))).ToLowerInvariant();
        var work = store.WorkFolderFor(digest);
        Directory.CreateDirectory(work);
        File.WriteAllBytes(Path.Combine(work, ImageStore.DiskFileName), System.Security.Cryptography.RandomNumberGenerator.GetBytes(kilobytes * 1024));
        var image = store.Commit(digest, work);
        store.RecordRef("localhost:5000", repository, name, "sha256:" + new string('0', 63) + (name.Length % 10), digest, "Local");
        return image;
    }

    private void LastUsed(string digest, DateTimeOffset when)
        => _db.Execute("UPDATE images SET last_used_at=$n WHERE layer_digest=$d", null, ("$n", when.ToString("O")), ("$d", digest));

    private void VmOn(string name, string imagePath) => new VmStore(_db, _paths).Insert(null, VmRecords.OnBase(_paths.VmDirectory, name, imagePath));

    [Fact]
    public async Task KeepLatestZero_WithTwoVmsOnA_RemovesOnlyB_AndFreesExactlyBsSize()
    {
        var a = await PublishAsync("a", 8, seed: 11);
        var b = await PublishAsync("b", 8, seed: 12);
        var pulledA = await PullAsync(a.Repo);
        var pulledB = await PullAsync(b.Repo);
        VmOn("vm-a1", pulledA.Path!);
        var linked = _dir.Combine("placed", "a.qcow2");
        Directory.CreateDirectory(Path.GetDirectoryName(linked)!);
        DiskPlacement.Place(pulledA.Path!, linked, PlacementMode.HardLink);
        VmOn("vm-a2", linked); // a -Destination hard link of A: A's store file is still what its overlay reads

        var catalog = new ImageCatalog(_db, _paths);
        var before = catalog.List();
        var imageA = Assert.Single(before, i => i.LayerDigest == pulledA.LayerDigest);
        var imageB = Assert.Single(before, i => i.LayerDigest == pulledB.LayerDigest);
        Assert.Equal(new[] { "vm-a1", "vm-a2" }, imageA.UsedBy.Order());
        Assert.Empty(imageB.UsedBy);
        Assert.Equal(new[] { b.Repo.WithTag("t").ToString() }, imageB.References);
        Assert.True(imageB.Size >= 8 << 20, $"B allocates {imageB.Size} bytes");

        var pruner = new ImagePruner(_db, _paths);
        var chosen = pruner.Select(new PruneRequest { KeepLatest = 0 });
        Assert.Equal(pulledB.LayerDigest, Assert.Single(chosen).LayerDigest);
        var removal = pruner.Remove(pulledB.LayerDigest!, force: false);

        Assert.Equal(imageB.Size, removal.BytesFreed);
        Assert.False(Directory.Exists(Path.GetDirectoryName(pulledB.Path!)));
        Assert.Null(new ImageStore(_db, _paths).FindVerified(pulledB.LayerDigest!));
        Assert.NotNull(new ImageStore(_db, _paths).FindVerified(pulledA.LayerDigest!));
        Assert.True(File.Exists(linked));
        var stats = new CacheEventLog(_db).Summarize();
        Assert.Equal(1, stats.Evictions);
        Assert.Equal(imageB.Size, stats.BytesFreed);
    }

    [Fact]
    public void Remove_OfAnImageAVmUses_IsRefusedAsInUse_UnlessForced()
    {
        var image = Local("used", 64, "ci/used");
        VmOn("vm-1", image.DiskPath);
        var pruner = new ImagePruner(_db, _paths);

        var refused = Assert.Throws<VmToolsException>(() => pruner.Remove(image.LayerDigest, force: false));
        Assert.Equal("Qcow2CacheImageInUse", refused.ErrorId);
        Assert.Contains("vm-1", refused.Message);
        Assert.Empty(pruner.Select(new PruneRequest { KeepLatest = 0, OlderThan = TimeSpan.Zero }));
        Assert.True(File.Exists(image.DiskPath));

        var forced = pruner.Remove(image.LayerDigest, force: true);
        Assert.True(forced.Forced);
        Assert.False(File.Exists(image.DiskPath));
    }

    [Fact]
    public async Task Remove_WhileAPullHoldsTheDigestLock_IsRefusedAsBusy_AndTheImageStays()
    {
        var image = Local("busy", 64, "ci/busy");
        var pruner = new ImagePruner(_db, _paths);
        using (await DigestLock.AcquireAsync(_paths.LockDirectory, image.LayerDigest, null, Ct))
        {
            var busy = Assert.Throws<VmToolsException>(() => pruner.Remove(image.LayerDigest, force: true));
            Assert.Equal("Qcow2CacheImageBusy", busy.ErrorId);
            Assert.NotNull(new ImageStore(_db, _paths).FindVerified(image.LayerDigest));
        }

        Assert.Equal(image.LayerDigest, pruner.Remove(image.LayerDigest, force: false).LayerDigest);
    }

    [Fact]
    public async Task PruneRacingAPullOfB_LeavesACompleteBOrNone()
    {
        var b = await PublishAsync("race", 24, seed: 21);
        var outcomes = new List<string>();
        var pulledWhileBusy = 0;
        for (var round = 0; round < 3; round++)
        {
            var pull = Task.Run(() => PullAsync(b.Repo), Ct);
            var busy = 0;
            while (!pull.IsCompleted)
            {
                using var db = StateDb.Open(_paths.DatabasePath);
                var pruner = new ImagePruner(db, _paths);
                foreach (var image in pruner.Select(new PruneRequest { KeepLatest = 0 }))
                {
                    try { pruner.Remove(image.LayerDigest, force: false); }
                    catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageBusy") { busy++; }
                }

                // Also name the digest the pull may be writing (not yet in the index): its lock must make the removal busy.
                try { pruner.Remove(b.Published.LayerDigest, force: false); }
                catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageBusy") { busy++; }
                catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageNotFound") { }
                await Task.Delay(5, Ct);
            }

            var entry = await pull;
            var stored = new ImageStore(_db, _paths).FindVerified(b.Published.LayerDigest);
            var folder = new ImageStore(_db, _paths).FolderFor(b.Published.LayerDigest);
            if (stored is null)
            {
                Assert.False(Directory.Exists(folder), "a removed image leaves no folder behind");
                outcomes.Add("none");
            }
            else
            {
                Assert.True(TestDisks.SameBytes(b.Disk, stored.DiskPath), "a stored image is complete");
                outcomes.Add("complete");
            }

            Assert.True(entry.Status is CacheStatus.Pulled or CacheStatus.Hit);
            Assert.True(busy > 0 || entry.Status == CacheStatus.Hit, "a pull that downloaded held the lock the removal tried");
            if (entry.Status == CacheStatus.Pulled) pulledWhileBusy += busy > 0 ? 1 : 0;
            Assert.Empty(Directory.GetDirectories(_paths.ImageStoreDirectory, "*.removing-*"));
        }

        Assert.True(pulledWhileBusy > 0, $"at least the first round downloads B while the removal finds it busy ({string.Join(", ", outcomes)})");
    }

    private static readonly DateTimeOffset PublishedAt = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    /// <summary>Puts a disk into this test's own store the way REGISTRY_CACHE=false publishing does (tag "t", source "Local").</summary>
    private async Task<(ImageReference Repo, string LayerDigest)> PublishLocallyAsync(string disk, ImageReference repo)
    {
        var published = await new Qcow2CachePublisher(_db, _paths).PublishAsync(new PublishRequest(disk, repo, new[] { "t" }, new SourceRevision("abc", "clean"))
        {
            Created = PublishedAt,
            RegistryEnabled = false,
        }, null, Ct);
        return (repo, published.LayerDigest);
    }

    /// <summary>The layer digest of a stored disk, recomputed from its bytes the way publishing made the layer.</summary>
    private static string LayerDigestOf(string diskPath)
    {
        using var sink = new HashingWriteSink();
        ContainerDiskLayout.Plan(diskPath, null, PublishedAt).WriteAsync(sink, null, CancellationToken.None).GetAwaiter().GetResult();
        return ContentDigest.FromHash(sink.GetHash()).ToString();
    }

    /// <summary>
    /// Opens a state database whose connection checks the stored disk at the moment a hit (or pull) is recorded: a temporary
    /// trigger calls back into the test from inside the fetch, before it returns. A prune that runs after the fetch
    /// returned is then never mistaken for one the hit raced. Each problem found lands in <paramref name="problems"/>.
    /// </summary>
    private StateDb ProbedDb(ConcurrentQueue<string> problems, Action? onVerified = null)
    {
        var db = StateDb.Open(_paths.DatabasePath);
        var store = new ImageStore(db, _paths);
        db.Connection.CreateFunction("vmtools_test_probe", (string kind, string layerDigest) =>
        {
            var disk = Path.Combine(store.FolderFor(layerDigest), ImageStore.DiskFileName);
            try
            {
                var actual = LayerDigestOf(disk);
                if (actual != layerDigest) problems.Enqueue($"{kind}: {disk} hashes to {actual}, not {layerDigest}");
                else onVerified?.Invoke();
            }
            catch (IOException e)
            {
                problems.Enqueue($"{kind}: {disk} was gone when the {kind} was recorded ({e.GetType().Name})");
            }

            return 0;
        });
        db.Execute("CREATE TEMP TRIGGER probe_hits AFTER INSERT ON main.events WHEN NEW.kind IN ('hit', 'pulled') BEGIN SELECT vmtools_test_probe(NEW.kind, NEW.detail); END");
        return db;
    }

    /// <summary>Keeps pruning <paramref name="layerDigest"/> (select, then remove, as Remove-Qcow2CacheImage -KeepLatest 0 does) until <paramref name="done"/>.</summary>
    private async Task<(int Removed, int Busy)> PruneUntilAsync(string layerDigest, Func<bool> done, bool stopAfterFirst)
    {
        using var db = StateDb.Open(_paths.DatabasePath);
        var pruner = new ImagePruner(db, _paths);
        int removed = 0, busy = 0;
        while (!done())
        {
            foreach (var image in pruner.Select(new PruneRequest { KeepLatest = 0 }).Where(i => i.LayerDigest == layerDigest))
            {
                try { pruner.Remove(image.LayerDigest, force: false); removed++; }
                catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageBusy") { busy++; }
                catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageNotFound") { }
            }

            if (removed > 0 && stopAfterFirst) break;
            await Task.Delay(Random.Shared.Next(0, 3), Ct);
        }

        return (removed, busy);
    }

    /// <summary>What the hits of one round returned: each Hit or Pulled entry must name B's stored disk; a Miss is the clean answer once B is gone.</summary>
    private static void AssertEntries(IEnumerable<Qcow2CacheEntry> entries, string expectedPath)
    {
        foreach (var entry in entries)
        {
            Assert.True(entry.Status is CacheStatus.Hit or CacheStatus.Pulled or CacheStatus.Miss, $"unexpected {entry.Status}");
            if (entry.Status != CacheStatus.Miss) Assert.Equal(expectedPath, entry.Path);
        }
    }

    [Fact]
    public async Task LocalHitsRacingPrunesOfB_ReturnBsVerifiedDisk_OrACleanMiss()
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine("local-b.qcow2"), 2, seed: 51);
        var repo = ImageReference.Parse("localhost:5000/prune/local-b");
        var problems = new ConcurrentQueue<string>();
        int verified = 0, hits = 0, busy = 0;
        // 25 rounds, and more (at most 100) until a prune has met a hit holding B's lock: how often that happens
        // is the scheduler's choice, and the last assertion needs it once.
        for (var round = 0; round < 100 && (round < 25 || busy == 0); round++)
        {
            var b = await PublishLocallyAsync(disk, repo);
            var expected = Path.Combine(new ImageStore(_db, _paths).FolderFor(b.LayerDigest), ImageStore.DiskFileName);
            var gone = 0;
            var started = new TaskCompletionSource();
            async Task<List<Qcow2CacheEntry>> HitUntilMissAsync()
            {
                using var db = ProbedDb(problems, () => Interlocked.Increment(ref verified));
                var fetcher = new Qcow2CacheFetcher(db, _paths);
                var entries = new List<Qcow2CacheEntry>();
                for (var i = 0; i < 400 && Volatile.Read(ref gone) == 0; i++)
                {
                    var entry = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "t" }) { RegistryEnabled = false }, null, Ct);
                    entries.Add(entry);
                    started.TrySetResult();
                    if (entry.Status == CacheStatus.Miss) Interlocked.Exchange(ref gone, 1);
                    await Task.Delay(Random.Shared.Next(0, 2), Ct); // gaps between hits, as between real callers: a prune can get in
                }

                return entries;
            }

            var hitters = new[] { Task.Run(HitUntilMissAsync, Ct), Task.Run(HitUntilMissAsync, Ct) };
            await started.Task;
            var prune = await PruneUntilAsync(b.LayerDigest, () => Volatile.Read(ref gone) == 1, stopAfterFirst: true);
            var entries = (await Task.WhenAll(hitters)).SelectMany(e => e).ToList();

            Assert.Equal(1, prune.Removed);
            busy += prune.Busy;
            AssertEntries(entries, expected);
            hits += entries.Count(e => e.Status == CacheStatus.Hit);
            Assert.False(File.Exists(expected), "B was pruned in this round");
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{hits} hits, {busy} prunes found B busy, {problems.Count} problems");
        Assert.True(problems.IsEmpty, string.Join(Environment.NewLine, problems.Take(10)));
        Assert.Equal(hits, verified);
        Assert.True(busy > 0, $"no prune ever met a hit holding B's lock in {hits} hits: the race was not run");
    }

    [Fact]
    public async Task RegistryHitsRacingPrunesOfB_ReturnBsVerifiedDisk_PullingAgainWhenItWasRemoved()
    {
        var b = await PublishAsync("hitrace", 2, seed: 52);
        var expected = Path.Combine(new ImageStore(_db, _paths).FolderFor(b.Published.LayerDigest), ImageStore.DiskFileName);
        Assert.Equal(b.Published.LayerDigest, LayerDigestOf(b.Disk));
        var problems = new ConcurrentQueue<string>();
        int verified = 0, removed = 0, busy = 0;
        var statuses = new List<CacheStatus>();
        // 4 rounds, and more (at most 16) until each outcome the last assertions need has happened once.
        for (var round = 0; round < 16 && (round < 4 || removed == 0 || busy == 0 || !statuses.Contains(CacheStatus.Pulled)); round++)
        {
            Assert.True((await PullAsync(b.Repo)).Status is CacheStatus.Pulled or CacheStatus.Hit, "B is in the store before the round");
            var done = 0;
            async Task<List<Qcow2CacheEntry>> HitAsync()
            {
                using var db = ProbedDb(problems, () => Interlocked.Increment(ref verified));
                var fetcher = new Qcow2CacheFetcher(db, _paths);
                var entries = new List<Qcow2CacheEntry>();
                for (var i = 0; i < 12; i++)
                {
                    entries.Add(await fetcher.FetchAsync(new FetchRequest(b.Repo, new[] { "t" }), null, Ct));
                }

                return entries;
            }

            var hitters = new[] { Task.Run(HitAsync, Ct), Task.Run(HitAsync, Ct) };
            var all = Task.WhenAll(hitters).ContinueWith(_ => Interlocked.Exchange(ref done, 1), TaskScheduler.Default);
            var prune = await PruneUntilAsync(b.Published.LayerDigest, () => Volatile.Read(ref done) == 1, stopAfterFirst: false);
            await all;
            var entries = (await Task.WhenAll(hitters)).SelectMany(e => e).ToList();

            removed += prune.Removed;
            busy += prune.Busy;
            AssertEntries(entries, expected);
            Assert.DoesNotContain(entries, e => e.Status == CacheStatus.Miss);
            statuses.AddRange(entries.Select(e => e.Status));
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{statuses.Count} fetches ({statuses.Count(s => s == CacheStatus.Pulled)} pulled again), B removed {removed} times, {busy} prunes found B busy, {problems.Count} problems");
        Assert.True(problems.IsEmpty, string.Join(Environment.NewLine, problems.Take(10)));
        Assert.Equal(statuses.Count, verified);
        Assert.True(removed > 0 && statuses.Contains(CacheStatus.Pulled), $"B was removed {removed} times; statuses: {string.Join(",", statuses.Distinct())}");
        Assert.True(busy > 0, "no prune ever met a hit or pull holding B's lock: the race was not run");
    }

    [Fact]
    public async Task Hit_WhileAnotherHolderHasTheDigestLock_WaitsSaysSo_ThenSucceeds()
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine("wait.qcow2"), 1, seed: 53);
        var b = await PublishLocallyAsync(disk, ImageReference.Parse("localhost:5000/prune/wait"));
        var said = new ConcurrentQueue<string>();
        var request = new FetchRequest(b.Repo, new[] { "t" }) { RegistryEnabled = false, ClientOptions = new RegistryClientOptions { Verbose = said.Enqueue } };

        Task<Qcow2CacheEntry> fetch;
        using (await DigestLock.AcquireAsync(_paths.LockDirectory, b.LayerDigest, null, Ct))
        {
            fetch = Task.Run(() => new Qcow2CacheFetcher(_db, _paths).FetchAsync(request, null, Ct), Ct);
            await Task.Delay(400, Ct);
            Assert.False(fetch.IsCompleted, "the hit waits while the lock is held");
            Assert.Contains(said, m => m.Contains(b.LayerDigest, StringComparison.Ordinal) && m.Contains("waiting", StringComparison.Ordinal));
        }

        var entry = await fetch;
        Assert.Equal(CacheStatus.Hit, entry.Status);
        Assert.Equal(b.LayerDigest, LayerDigestOf(entry.Path!));
    }

    [Fact]
    public async Task Hit_WhoseImageVanishedWhileItWaited_PullsItAgain_OrIsALocalMiss()
    {
        var b = await PublishAsync("vanish", 1, seed: 54);
        Assert.Equal(CacheStatus.Pulled, (await PullAsync(b.Repo)).Status);
        var folder = new ImageStore(_db, _paths).FolderFor(b.Published.LayerDigest);

        async Task<Qcow2CacheEntry> FetchWhileTheImageGoesAsync(bool registry)
        {
            Task<Qcow2CacheEntry> fetch;
            using (await DigestLock.AcquireAsync(_paths.LockDirectory, b.Published.LayerDigest, null, Ct))
            {
                fetch = Task.Run(() => new Qcow2CacheFetcher(_db, _paths).FetchAsync(new FetchRequest(b.Repo, new[] { "t" }) { RegistryEnabled = registry }, null, Ct), Ct);
                await Task.Delay(300, Ct);
                Assert.False(fetch.IsCompleted);
                Directory.Delete(folder, recursive: true); // what the holder (a removal) does before it lets go
            }

            return await fetch;
        }

        var pulled = await FetchWhileTheImageGoesAsync(registry: true);
        Assert.Equal(CacheStatus.Pulled, pulled.Status);
        Assert.Equal(b.Published.LayerDigest, LayerDigestOf(pulled.Path!));

        var missed = await FetchWhileTheImageGoesAsync(registry: false);
        Assert.Equal(CacheStatus.Miss, missed.Status);
        Assert.Null(missed.Path);
    }

    [Fact]
    public async Task Placement_OfAnImagePrunedAfterTheFetchReturned_PullsItAgain_OrFailsAsImageGone()
    {
        var b = await PublishAsync("placegone", 1, seed: 56);
        var fetcher = new Qcow2CacheFetcher(_db, _paths);
        var pruner = new ImagePruner(_db, _paths);
        var request = new FetchRequest(b.Repo, new[] { "t" });
        var pulled = await fetcher.FetchAsync(request, null, Ct);
        pruner.Remove(pulled.LayerDigest!, force: false); // between the fetch and the placement, as while Get-Qcow2Cache asks ShouldProcess

        var destination = _dir.Combine("placed", "disk.qcow2");
        var placed = await fetcher.PlaceAsync(request, pulled, destination, PlacementMode.Copy, null, Ct);

        Assert.Equal(CacheStatus.Pulled, placed.Status);
        Assert.Equal(destination, placed.Path);
        Assert.Equal(b.Published.LayerDigest, LayerDigestOf(destination));

        var local = request with { RegistryEnabled = false };
        var hit = await fetcher.FetchAsync(local, null, Ct);
        Assert.Equal(CacheStatus.Hit, hit.Status);
        pruner.Remove(hit.LayerDigest!, force: false);
        var elsewhere = _dir.Combine("placed", "other.qcow2");

        var gone = await Assert.ThrowsAsync<VmToolsException>(() => fetcher.PlaceAsync(local, hit, elsewhere, PlacementMode.Auto, null, Ct));

        Assert.Equal("Qcow2CacheImageGone", gone.ErrorId);
        Assert.False(File.Exists(elsewhere));
        Assert.Equal(new[] { destination }, Directory.GetFiles(Path.GetDirectoryName(destination)!));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PlacementsRacingPrunesOfB_PlaceBsBytes_OrFailAsImageGone_NeverWithARawIoError(bool registry)
    {
        var local = registry ? null : TestDisks.CreateQcow2(_dir.Combine("place-b.qcow2"), 2, seed: 57);
        var repo = registry ? (await PublishAsync("placerace", 2, seed: 57)).Repo : ImageReference.Parse("localhost:5000/prune/place-b");
        var request = new FetchRequest(repo, new[] { "t" }) { RegistryEnabled = registry };
        var problems = new ConcurrentQueue<string>();
        int placed = 0, gone = 0, pulledToPlace = 0, removed = 0, busy = 0;
        // The outcomes the last assertions need, each at least once; rounds go on (up to four times the minimum)
        // until they all have happened, since which one a round meets is the scheduler's choice.
        bool Covered() => placed > 0 && removed > 0 && (registry ? pulledToPlace > 0 && busy > 0 : gone > 0);
        var minimum = registry ? 5 : 12;
        for (var round = 0; round < minimum * 4 && (round < minimum || !Covered()); round++)
        {
            var digest = local is null ? (await PullAsync(repo)).LayerDigest! : (await PublishLocallyAsync(local, repo)).LayerDigest;
            var done = 0;
            var started = new TaskCompletionSource();
            async Task PlaceRepeatedlyAsync(string destination)
            {
                using var db = ProbedDb(problems);
                var fetcher = new Qcow2CacheFetcher(db, _paths);
                try
                {
                    // With the registry, a fixed number of rounds (B comes back); without it, until B is gone (every fetch a miss).
                    for (var i = 0; i < (registry ? 12 : 400); i++)
                    {
                        var entry = await fetcher.FetchAsync(request, null, Ct);
                        if (entry.Status == CacheStatus.Miss) break; // registry disabled and B pruned: the clean answer, nothing to place
                        await Task.Delay(Random.Shared.Next(2, 6), Ct); // the gap in which the cmdlet asks ShouldProcess: a prune can get in
                        try
                        {
                            var result = await fetcher.PlaceAsync(request, entry, destination, PlacementMode.Copy, null, Ct);
                            if (result.Status == CacheStatus.Pulled && entry.Status == CacheStatus.Hit) Interlocked.Increment(ref pulledToPlace);
                            var actual = LayerDigestOf(destination);
                            if (actual == digest) Interlocked.Increment(ref placed);
                            else problems.Enqueue($"{destination} hashes to {actual}, not {digest}");
                        }
                        catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageGone")
                        {
                            Interlocked.Increment(ref gone);
                        }
                        catch (Exception e)
                        {
                            problems.Enqueue($"placement failed with {e.GetType().Name}: {e.Message}");
                        }

                        // The prune starts once a first placement was tried: a prune that always won outright would test nothing.
                        started.TrySetResult();
                    }
                }
                finally
                {
                    started.TrySetResult(); // also when B was gone at once, or a fetch failed
                }
            }

            var placers = Task.WhenAll(Task.Run(() => PlaceRepeatedlyAsync(_dir.Combine("dest-1", "disk.qcow2")), Ct), Task.Run(() => PlaceRepeatedlyAsync(_dir.Combine("dest-2", "disk.qcow2")), Ct));
            var all = placers.ContinueWith(_ => Interlocked.Exchange(ref done, 1), TaskScheduler.Default);
            await started.Task;
            var prune = await PruneUntilAsync(digest, () => Volatile.Read(ref done) == 1, stopAfterFirst: false);
            await all;
            await placers;
            removed += prune.Removed;
            busy += prune.Busy;
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{placed} placed ({pulledToPlace} pulled again to be placed), {gone} found B gone, B removed {removed} times, {busy} prunes found B busy, {problems.Count} problems");
        Assert.True(problems.IsEmpty, string.Join(Environment.NewLine, problems.Take(10)));
        Assert.True(placed > 0 && removed > 0, $"{placed} placements, {removed} removals: the race was not run");
        if (registry)
        {
            Assert.Equal(0, gone); // with the registry, a pruned image is pulled again and placed
            Assert.True(pulledToPlace > 0, "no prune ever got in between a fetch and its placement: the race was not run");
            Assert.True(busy > 0, "no prune ever met a placement or hit holding B's lock: the race was not run");
        }
        else
        {
            // Without the registry B stays gone once pruned, so each round has one such race: it must have been met.
            Assert.True(gone > 0, "no prune ever got in between a fetch and its placement: the race was not run");
        }
    }

    [Fact]
    public async Task PublishesRacingPrunesOfTheSameLayer_LeaveAVerifiedImageOrNone_AndNoStrayFolders()
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine("pub-race.qcow2"), 2, seed: 58);
        var repo = ImageReference.Parse("localhost:5000/prune/pub-race");
        var digest = LayerDigestOf(disk);
        var problems = new ConcurrentQueue<string>();
        int published = 0, storedAfter = 0, done = 0;
        async Task PublishRepeatedlyAsync()
        {
            using var db = StateDb.Open(_paths.DatabasePath);
            var publisher = new Qcow2CachePublisher(db, _paths);
            var store = new ImageStore(db, _paths);
            for (var i = 0; i < 25; i++)
            {
                try
                {
                    var result = await publisher.PublishAsync(new PublishRequest(disk, repo, new[] { "t" }, new SourceRevision("abc", "clean"))
                    {
                        Created = PublishedAt,
                        RegistryEnabled = false,
                    }, null, Ct);
                    Interlocked.Increment(ref published);
                    if (result.LayerDigest != digest) problems.Enqueue($"published {result.LayerDigest}, not {digest}");
                    // Looked at under the lock: B complete, or (a prune got in since) not held at all.
                    var stored = await store.UseVerifiedAsync(digest, image => LayerDigestOf(image.DiskPath), null, Ct);
                    if (stored is not null) Interlocked.Increment(ref storedAfter);
                    if (stored is not null && stored != digest) problems.Enqueue($"the stored B hashes to {stored}");
                }
                catch (Exception e)
                {
                    problems.Enqueue($"publish failed with {e.GetType().Name}: {e.Message}");
                }

                await Task.Delay(Random.Shared.Next(0, 2), Ct);
            }
        }

        var publishers = Task.WhenAll(Task.Run(PublishRepeatedlyAsync, Ct), Task.Run(PublishRepeatedlyAsync, Ct));
        var all = publishers.ContinueWith(_ => Interlocked.Exchange(ref done, 1), TaskScheduler.Default);
        var prune = await PruneUntilAsync(digest, () => Volatile.Read(ref done) == 1, stopAfterFirst: false);
        await all;
        await publishers;

        TestContext.Current.TestOutputHelper?.WriteLine($"{published} publishes, B stored after {storedAfter}, removed {prune.Removed} times, {prune.Busy} prunes found B busy, {problems.Count} problems");
        Assert.True(problems.IsEmpty, string.Join(Environment.NewLine, problems.Take(10)));
        Assert.Equal(50, published);
        Assert.True(prune.Removed > 0, "no prune removed B: the race was not run");
        var store = new ImageStore(_db, _paths);
        var final = store.FindVerified(digest);
        Assert.Equal(final is not null, store.Indexes(digest));
        if (final is not null) Assert.Equal(digest, LayerDigestOf(final.DiskPath));
        Assert.Equal(final is null ? Array.Empty<string>() : new[] { store.FolderFor(digest) }, Directory.GetDirectories(_paths.ImageStoreDirectory));
        Assert.Empty(Directory.GetDirectories(_paths.DownloadDirectory, "*.adopt-*"));
        Assert.True(File.Exists(disk), "the published disk itself is never removed");
    }

    [Fact]
    public async Task Publish_WhileAnotherHolderHasTheDigestLock_WaitsSaysSo_ThenStoresTheImage()
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine("pub-wait.qcow2"), 1, seed: 59);
        var digest = LayerDigestOf(disk);
        var said = new ConcurrentQueue<string>();
        var request = new PublishRequest(disk, ImageReference.Parse("localhost:5000/prune/pub-wait"), new[] { "t" }, new SourceRevision("abc", "clean"))
        {
            Created = PublishedAt,
            RegistryEnabled = false,
            ClientOptions = new RegistryClientOptions { Verbose = said.Enqueue },
        };

        Task<PublishResult> publish;
        using (await DigestLock.AcquireAsync(_paths.LockDirectory, digest, null, Ct))
        {
            publish = Task.Run(() => new Qcow2CachePublisher(_db, _paths).PublishAsync(request, null, Ct), Ct);
            await Task.Delay(500, Ct);
            Assert.False(publish.IsCompleted, "the adoption waits while the lock is held");
            Assert.Contains(said, m => m.Contains(digest, StringComparison.Ordinal) && m.Contains("waiting", StringComparison.Ordinal));
            Assert.Null(new ImageStore(_db, _paths).FindVerified(digest));
        }

        Assert.Equal(digest, (await publish).LayerDigest);
        Assert.Equal(digest, LayerDigestOf(new ImageStore(_db, _paths).FindVerified(digest)!.DiskPath));
    }

    [Fact]
    public async Task Prune_OfAnImageHitAfterItWasChosen_KeepsIt_AndRemovesItWhenNotUsedAgain()
    {
        var disk = TestDisks.CreateQcow2(_dir.Combine("chosen.qcow2"), 1, seed: 55);
        var b = await PublishLocallyAsync(disk, ImageReference.Parse("localhost:5000/prune/chosen"));
        LastUsed(b.LayerDigest, DateTimeOffset.UtcNow.AddDays(-40));
        var pruner = new ImagePruner(_db, _paths);
        var chosen = Assert.Single(pruner.Select(new PruneRequest { OlderThan = TimeSpan.FromDays(30) }));

        var hit = await new Qcow2CacheFetcher(_db, _paths).FetchAsync(new FetchRequest(b.Repo, new[] { "t" }) { RegistryEnabled = false }, null, Ct);

        Assert.Equal(CacheStatus.Hit, hit.Status);
        Assert.True(Assert.Single(new ImageCatalog(_db, _paths).List()).LastUsed > DateTimeOffset.UtcNow.AddMinutes(-1), "the hit is recorded as a use");
        Assert.Null(pruner.RemoveChosen(chosen, force: false));
        Assert.True(File.Exists(hit.Path));
        Assert.Empty(pruner.Select(new PruneRequest { OlderThan = TimeSpan.FromDays(30) }));

        var again = Assert.Single(pruner.Select(new PruneRequest { KeepLatest = 0 }));
        Assert.Equal(b.LayerDigest, pruner.RemoveChosen(again, force: false)?.LayerDigest);
        Assert.False(File.Exists(hit.Path));
    }

    [Fact]
    public void RemovingAnImageAdoptedByHardLink_FreesNothing_AndKeepsTheCallersFile()
    {
        var source = _dir.Combine("built.qcow2");
        File.WriteAllBytes(source, System.Security.Cryptography.RandomNumberGenerator.GetBytes(256 * 1024));
        var store = new ImageStore(_db, _paths);
        var digest = "sha256:" + new string('a', 64);
        var work = store.WorkFolderFor(digest);
        Directory.CreateDirectory(work);
        DiskPlacement.Place(source, Path.Combine(work, ImageStore.DiskFileName), PlacementMode.HardLink);
        var image = store.Commit(digest, work, makeReadOnly: false);
        var listed = Assert.Single(new ImageCatalog(_db, _paths).List());
        Assert.True(listed.Size > 0);
        Assert.Equal(0, listed.ReclaimableBytes);

        var removal = new ImagePruner(_db, _paths).Remove(digest, force: false);

        Assert.Equal(0, removal.BytesFreed);
        Assert.False(File.Exists(image.DiskPath));
        Assert.True(File.Exists(source));
        Assert.Equal(1u, FileIdentity.Of(source)!.Value.LinkCount);
    }

    [Fact]
    public void VmOnACopyOfTheStoredDisk_DoesNotKeepTheImageInUse()
    {
        var image = Local("copied", 64, "ci/copied");
        var copy = _dir.Combine("copy.qcow2");
        File.Copy(image.DiskPath, copy);
        VmOn("vm-copy", copy);

        Assert.Empty(Assert.Single(new ImageCatalog(_db, _paths).List()).UsedBy);
    }

    [Fact]
    public void OlderThan_SelectsOnlyImagesLastUsedBeforeTheCutoff()
    {
        var old = Local("old", 16, "ci/age");
        var recent = Local("recent", 16, "ci/age");
        LastUsed(old.LayerDigest, DateTimeOffset.UtcNow.AddDays(-40));
        LastUsed(recent.LayerDigest, DateTimeOffset.UtcNow.AddDays(-2));

        var chosen = new ImagePruner(_db, _paths).Select(new PruneRequest { OlderThan = TimeSpan.FromDays(30) });

        Assert.Equal(old.LayerDigest, Assert.Single(chosen).LayerDigest);
    }

    [Fact]
    public void KeepLatest_KeepsTheMostRecentlyUsedPerRepository()
    {
        var r1old = Local("r1-old", 16, "ci/one");
        var r1new = Local("r1-new", 16, "ci/one");
        var r2only = Local("r2-only", 16, "ci/two");
        LastUsed(r1old.LayerDigest, DateTimeOffset.UtcNow.AddDays(-3));
        LastUsed(r1new.LayerDigest, DateTimeOffset.UtcNow.AddDays(-1));
        LastUsed(r2only.LayerDigest, DateTimeOffset.UtcNow.AddDays(-9));

        var chosen = new ImagePruner(_db, _paths).Select(new PruneRequest { KeepLatest = 1 });

        Assert.Equal(r1old.LayerDigest, Assert.Single(chosen).LayerDigest);
    }

    [Fact]
    public void MaxBytes_EvictsLeastRecentlyUsedUntilTheStoreFits()
    {
        var oldest = Local("oldest", 256, "ci/size");
        var middle = Local("middle", 256, "ci/size");
        var newest = Local("newest", 256, "ci/size");
        LastUsed(oldest.LayerDigest, DateTimeOffset.UtcNow.AddHours(-3));
        LastUsed(middle.LayerDigest, DateTimeOffset.UtcNow.AddHours(-2));
        LastUsed(newest.LayerDigest, DateTimeOffset.UtcNow.AddHours(-1));
        var one = Assert.Single(new ImageCatalog(_db, _paths).List(new[] { newest.LayerDigest })).Size;

        var chosen = new ImagePruner(_db, _paths).Select(new PruneRequest { MaxBytes = one + one / 2 });

        Assert.Equal(new[] { oldest.LayerDigest, middle.LayerDigest }, chosen.Select(c => c.LayerDigest));
    }

    [Fact]
    public void Catalog_FiltersByReferenceWildcard_ByLiteralRepository_AndByDigest()
    {
        var one = Local("v1", 16, "ci/filter");
        var two = Local("v2", 16, "ci/filter");
        var other = Local("v1", 16, "ci/other");
        var catalog = new ImageCatalog(_db, _paths);

        Assert.Equal(new[] { one.LayerDigest }, catalog.List(references: new[] { "localhost:5000/ci/filter:v1" }).Select(i => i.LayerDigest));
        Assert.Equal(new[] { one.LayerDigest, two.LayerDigest }.Order(), catalog.List(references: new[] { "localhost:5000/ci/filter" }).Select(i => i.LayerDigest).Order());
        Assert.Equal(new[] { one.LayerDigest, other.LayerDigest }.Order(), catalog.List(references: new[] { "*:v1" }).Select(i => i.LayerDigest).Order());
        Assert.Equal(new[] { two.LayerDigest }, catalog.List(digests: new[] { two.LayerDigest[..20] + "*" }).Select(i => i.LayerDigest));
        Assert.Empty(catalog.List(references: new[] { "localhost:5000/ci/none" }));
    }

    [Fact]
    public async Task PinnedDigest_PullsThatManifest_ThenHitsWithoutMovingBytes()
    {
        var a = await PublishAsync("pin", 8, seed: 31);

        var first = await PullAsync(a.Repo, a.Published.Digest);
        var second = await PullAsync(a.Repo, a.Published.Digest);

        Assert.Equal(CacheStatus.Pulled, first.Status);
        Assert.Equal(a.Published.Digest, first.Digest);
        Assert.Equal(a.Repo.WithDigest(a.Published.Digest).ToString(), first.Reference);
        Assert.True(TestDisks.SameBytes(a.Disk, first.Path!));
        Assert.Equal(CacheStatus.Hit, second.Status);
        Assert.Equal(0, second.BytesDownloaded);
        Assert.Contains($"{a.Repo.Name}@{a.Published.Digest}", Assert.Single(new ImageCatalog(_db, _paths).List()).References);
    }

    [Fact]
    public async Task PinnedDigest_WhoseManifestTheRegistryServesChanged_IsRefused()
    {
        var a = await PublishAsync("tamper", 8, seed: 41);
        var blob = _registry.Server.BlobDataPath(a.Published.Digest);
        // Still a valid manifest of the same length (the registry parses what it serves), but not the pinned bytes.
        var text = File.ReadAllText(blob);
        var at = text.IndexOf("sha256:", StringComparison.Ordinal) + "sha256:".Length;
        File.WriteAllText(blob, text[..at] + (text[at] == '0' ? '1' : '0') + text[(at + 1)..]);

        var refused = await Assert.ThrowsAsync<VmToolsException>(() => PullAsync(a.Repo, a.Published.Digest));

        Assert.Equal("RegistryDigestMismatch", refused.ErrorId);
        Assert.Empty(new ImageCatalog(_db, _paths).List());
    }
}
