using System.Diagnostics;
using VmTools.Core.Registry;
using VmTools.Core.State;

namespace VmTools.Core.Images;

/// <summary>
/// Answers "is the base cached?" and brings it local. A registry digest that matches a verified local
/// copy is a hit with zero blob bytes; otherwise the disk layer is downloaded, verified, header-checked
/// and atomically committed. Concurrent fetches of one layer are joined by a per-digest lock, and every hit is
/// decided under that lock (shared) so that a prune cannot delete the image between the check and the answer.
/// </summary>
public sealed class Qcow2CacheFetcher
{
    private readonly ImageStore _store;
    private readonly CacheEventLog _events;
    private readonly VmToolsPaths _paths;

    public Qcow2CacheFetcher(StateDb db, VmToolsPaths paths)
    {
        _paths = paths.EnsureCreated();
        _store = new ImageStore(db, _paths);
        _events = new CacheEventLog(db);
    }

    public ImageStore Store => _store;

    public async Task<Qcow2CacheEntry> FetchAsync(FetchRequest request, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var repo = request.Repository;
        var verbose = request.ClientOptions.Verbose;
        if (request.ManifestDigest is { } pinned)
        {
            // Content-addressed: the digest itself proves the local copy is the one asked for, so no registry request is made.
            if (_store.LayerForManifest(repo.Registry, repo.Repository, pinned) is { } pinnedLayer
                && await TryHitAsync(new Candidate(repo.WithDigest(pinned), pinned, pinnedLayer, request.RegistryEnabled ? "Registry" : "Local"), verbose, clock, ct).ConfigureAwait(false) is { } pinnedHit)
            {
                return pinnedHit;
            }

            if (!request.RegistryEnabled) return Missed(repo.WithDigest(pinned), new[] { pinned }, "Local", clock);
            request = request with { Tags = new[] { pinned } };
        }

        if (!request.RegistryEnabled)
        {
            foreach (var tag in request.Tags)
            {
                if (_store.FindRef(repo.Registry, repo.Repository, tag) is { } known
                    && await TryHitAsync(new Candidate(repo.WithTag(tag), known.ManifestDigest, known.LayerDigest, "Local"), verbose, clock, ct).ConfigureAwait(false) is { } local)
                {
                    return local;
                }
            }

            return Missed(repo, request.Tags, "Local", clock);
        }

        var client = new RegistryClient(repo, request.ClientOptions);
        foreach (var tag in request.Tags)
        {
            // A pinned digest travels in the tag slot: the registry API addresses manifests by either, and image_refs
            // records it there (a tag cannot contain ':', so the two never collide).
            var reference = request.ManifestDigest is null ? repo.WithTag(tag) : repo.WithDigest(tag);
            var head = await client.HeadManifestAsync(repo.Repository, tag, ct).ConfigureAwait(false);
            if (head is null)
            {
                verbose?.Invoke($"{reference}: not in the registry.");
                continue;
            }

            if (request.ManifestDigest is { } asked && head.Digest is { } served && served != asked)
            {
                throw new VmToolsException("RegistryDigestMismatch", FailureKind.InvalidData,
                    $"{reference}: the registry answered with manifest {served}, not the pinned one.") { Target = reference.ToString() };
            }

            // A known digest whose image a prune removed meanwhile is no hit: the manifest is read and the layer pulled again.
            if (head.Digest is { } headDigest && _store.LayerForManifest(repo.Registry, repo.Repository, headDigest) is { } knownLayer
                && await TryHitAsync(new Candidate(reference, headDigest, knownLayer, "Registry", tag), verbose, clock, ct).ConfigureAwait(false) is { } cached)
            {
                return cached;
            }

            var document = await client.GetManifestAsync(repo.Repository, tag, ct).ConfigureAwait(false);
            var manifest = await ResolvePlatformAsync(client, repo, document, request.Platform, ct).ConfigureAwait(false);
            foreach (var layer in manifest.Layers.Reverse())
            {
                MediaTypes.CompressionOf(layer.MediaType); // refuses unknown media types before any byte moves
            }

            foreach (var layer in manifest.Layers.Reverse())
            {
                if (!ContentDigest.TryParse(layer.Digest, out _))
                {
                    throw new VmToolsException("RegistryDigestInvalid", FailureKind.InvalidData, $"{reference} names a layer with an invalid digest '{layer.Digest}'.") { Target = reference.ToString() };
                }

                var candidate = new Candidate(reference, document.Digest, layer.Digest, "Registry", tag);
                if (await TryHitAsync(candidate, verbose, clock, ct).ConfigureAwait(false) is { } sameLayer)
                {
                    return sameLayer;
                }

                if (!request.PullAllowed)
                {
                    return new Qcow2CacheEntry
                    {
                        Reference = reference.ToString(), Tag = tag, Digest = document.Digest, LayerDigest = layer.Digest,
                        Size = layer.Size, Status = CacheStatus.WouldPull, Source = "Registry", Duration = clock.Elapsed,
                    };
                }

                using (await DigestLock.AcquireAsync(_paths.LockDirectory, layer.Digest, verbose, ct).ConfigureAwait(false))
                {
                    if (HitWhileLocked(candidate, clock) is { } joined)
                    {
                        return joined;
                    }

                    var pulled = await PullLayerAsync(client, reference, layer, progress, ct).ConfigureAwait(false);
                    if (pulled is null) continue;
                    _store.RecordRef(repo.Registry, repo.Repository, tag, document.Digest, layer.Digest, "Registry");
                    _events.Record(CacheEventKind.Pulled, reference.ToString(), pulled.Value.Bytes, clock.Elapsed, layer.Digest);
                    return Entry(reference, document.Digest, pulled.Value.Image, CacheStatus.Pulled, "Registry", clock) with { BytesDownloaded = pulled.Value.Bytes };
                }
            }

            throw new VmToolsException("ImageLayerHasNoDisk", FailureKind.InvalidData,
                $"{reference} holds no disk image (looked for disk/*.qcow2, disk/*.img and qcow2/disk.qcow2 in every layer).") { Target = reference.ToString() };
        }

        return Missed(repo, request.Tags, "Registry", clock);
    }

    /// <summary>
    /// Places the stored disk of <paramref name="entry"/> (an answer of <see cref="FetchAsync"/>) at <paramref name="destination"/>
    /// while holding the digest's shared lock, so a prune cannot delete it mid-placement. A prune that removed it after the
    /// fetch returned is met here: the image is fetched again (pulled, with <paramref name="request"/> and pulling allowed),
    /// or, with the registry disabled or the image gone from it too, the answer is <c>Qcow2CacheImageGone</c>.
    /// Returns the entry with <see cref="Qcow2CacheEntry.Path"/> set to the placed file.
    /// </summary>
    public async Task<Qcow2CacheEntry> PlaceAsync(FetchRequest request, Qcow2CacheEntry entry, string destination, PlacementMode mode, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var verbose = request.ClientOptions.Verbose;
        var target = Path.GetFullPath(destination);
        // A prune can remove the image again between the new fetch and the next attempt; a few rounds tell "keeps being pruned" from bad luck.
        const int Attempts = 3;
        for (var attempt = 1; ; attempt++)
        {
            if (entry.LayerDigest is not { } layer || entry.Path != Path.Combine(_store.FolderFor(layer), ImageStore.DiskFileName))
            {
                // Not the store's file (a build the store did not adopt): the caller's own disk, placed as it is.
                var own = entry.Path ?? throw new ArgumentException("The entry names no disk to place.", nameof(entry));
                verbose?.Invoke($"Placed the disk at {target} by {DiskPlacement.Place(own, target, mode)}.");
                return entry with { Path = target };
            }

            var placed = await _store.UseVerifiedAsync(layer, image =>
            {
                var used = DiskPlacement.Place(image.DiskPath, target, mode);
                verbose?.Invoke($"Placed the disk at {target} by {used}.");
                return entry with { Path = target };
            }, verbose, ct).ConfigureAwait(false);
            if (placed is not null) return placed;
            if (!request.RegistryEnabled) throw Gone(entry, target, "it was removed from the local store (by a prune) after it was found, and the registry is disabled");
            if (attempt == Attempts) throw Gone(entry, target, $"it was removed from the local store (by a prune) {Attempts} times before it could be placed");
            verbose?.Invoke($"{entry.Reference}: layer {layer} was removed from the local store before it could be placed; fetching it again.");
            entry = await FetchAsync(request with { PullAllowed = true }, progress, ct).ConfigureAwait(false);
            if (entry.Status == CacheStatus.Miss) throw Gone(entry, target, "it was removed from the local store (by a prune) and the registry no longer has it");
        }
    }

    private static VmToolsException Gone(Qcow2CacheEntry entry, string destination, string why)
        => new("Qcow2CacheImageGone", FailureKind.NotFound, $"{entry.Reference} was not placed at '{destination}': {why}. Run Get-Qcow2Cache again.") { Target = entry.Reference };

    /// <summary>True when a tag exists (registry) or a verified local copy is known (registry disabled).</summary>
    public async Task<bool> ExistsAsync(FetchRequest request, CancellationToken ct)
    {
        var repo = request.Repository;
        if (!request.RegistryEnabled)
        {
            return request.Tags.Any(t => _store.FindRef(repo.Registry, repo.Repository, t) is { } k && _store.FindVerified(k.LayerDigest) is not null);
        }

        var client = new RegistryClient(repo, request.ClientOptions);
        foreach (var tag in request.Tags)
        {
            if (await client.HeadManifestAsync(repo.Repository, tag, ct).ConfigureAwait(false) is not null) return true;
        }

        return false;
    }

    private async Task<(StoredImage Image, long Bytes)?> PullLayerAsync(RegistryClient client, ImageReference reference, OciDescriptor layer, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var work = _store.WorkFolderFor(layer.Digest);
        var clock = Stopwatch.StartNew();
        long done = 0;
        var downloader = new LayerDownloader(client, reference.Repository, n =>
        {
            var total = Interlocked.Add(ref done, n);
            progress?.Report(new TransferProgress("Pulling " + reference, layer.Digest[..19], total, layer.Size, clock.Elapsed));
        }, client.Options.Verbose);
        var result = await downloader.DownloadAsync(layer, work, ct).ConfigureAwait(false);
        if (result is null)
        {
            LayerDownloader.TryDeleteFolder(work);
            return null;
        }

        try
        {
            Qcow2Header.RequireSelfContained(Path.Combine(work, ImageStore.DiskFileName), reference.ToString());
        }
        catch
        {
            LayerDownloader.TryDeleteFolder(work);
            throw;
        }

        return (_store.Commit(layer.Digest, work), downloader.BytesDownloaded);
    }

    private static async Task<OciManifest> ResolvePlatformAsync(RegistryClient client, ImageReference repo, ManifestDocument document, OciPlatform platform, CancellationToken ct)
    {
        if (!document.IsIndex) return document.AsManifest();
        var index = document.AsIndex();
        var match = index.Manifests.FirstOrDefault(m => m.Platform is { } p && p.Os == platform.Os && p.Architecture == platform.Architecture
                                                        && (platform.Variant is null || p.Variant == platform.Variant))
            ?? throw new VmToolsException("ImagePlatformNotFound", FailureKind.NotFound,
                $"{repo} has no image for {platform}; it has {string.Join(", ", index.Manifests.Select(m => m.Platform?.ToString() ?? "?"))}.") { Target = platform.ToString() };
        var child = await client.GetManifestAsync(repo.Repository, match.Digest, ct).ConfigureAwait(false);
        if (child.IsIndex) throw new VmToolsException("RegistryManifestInvalid", FailureKind.InvalidData, $"{repo}: an index points at another index; nesting is not supported.");
        return child.AsManifest();
    }

    /// <summary>
    /// The hit for a stored layer, decided under the digest's shared lock (waiting while a pull or a removal holds it),
    /// so the entry's files exist when it is returned; null when the store does not (or no longer) hold the image.
    /// The lock is released before returning: the caller uses the path after that, as a VM booting it does.
    /// </summary>
    private async Task<Qcow2CacheEntry?> TryHitAsync(Candidate candidate, Action<string>? verbose, Stopwatch clock, CancellationToken ct)
    {
        // A layer the index never held is no hit and needs no lock: a pull of it that commits meanwhile is joined under the pull's own lock.
        if (!_store.Indexes(candidate.LayerDigest)) return null;
        return await _store.UseVerifiedAsync(candidate.LayerDigest, image => Hit(candidate, image, clock), verbose, ct).ConfigureAwait(false);
    }

    /// <summary>The hit for a candidate whose digest lock the caller holds (shared or exclusive); null when it is not in the store.</summary>
    private Qcow2CacheEntry? HitWhileLocked(Candidate candidate, Stopwatch clock)
        => _store.FindVerified(candidate.LayerDigest) is { } image ? Hit(candidate, image, clock) : null;

    private Qcow2CacheEntry Hit(Candidate candidate, StoredImage image, Stopwatch clock)
    {
        var reference = candidate.Reference;
        if (candidate.Tag is { } tag) _store.RecordRef(reference.Registry, reference.Repository, tag, candidate.ManifestDigest, candidate.LayerDigest, candidate.Source);
        // The use is recorded before the lock is released: a prune choosing by last use later keeps the image, and one
        // that chose it earlier sees the use when it re-reads it under the lock (ImagePruner.RemoveChosen).
        _store.Touch(image.LayerDigest);
        _events.Record(CacheEventKind.Hit, reference.ToString(), 0, clock.Elapsed, image.LayerDigest);
        return Entry(reference, candidate.ManifestDigest, image, CacheStatus.Hit, candidate.Source, clock);
    }

    private Qcow2CacheEntry Missed(ImageReference repo, IReadOnlyList<string> tags, string source, Stopwatch clock)
    {
        _events.Record(CacheEventKind.Miss, repo.Name, 0, clock.Elapsed, string.Join(',', tags));
        return new Qcow2CacheEntry { Reference = repo.Name, Tag = tags.FirstOrDefault(), Status = CacheStatus.Miss, Source = source, Duration = clock.Elapsed };
    }

    internal static Qcow2CacheEntry Entry(ImageReference reference, string? manifestDigest, StoredImage image, CacheStatus status, string source, Stopwatch clock) => new()
    {
        Reference = reference.ToString(),
        Tag = reference.Tag,
        Digest = manifestDigest,
        LayerDigest = image.LayerDigest,
        Path = image.DiskPath,
        Size = image.Size,
        Status = status,
        Source = source,
        KernelPath = image.BootFiles.FirstOrDefault(f => BootFile.IsKernel(Path.GetFileName(f))),
        InitrdPath = image.BootFiles.FirstOrDefault(f => BootFile.IsInitrd(Path.GetFileName(f))),
        Duration = clock.Elapsed,
    };

    /// <summary>A stored layer that would answer a request; <see cref="Tag"/> is the registry tag to record as pointing at it.</summary>
    private sealed record Candidate(ImageReference Reference, string ManifestDigest, string LayerDigest, string Source, string? Tag = null);
}
