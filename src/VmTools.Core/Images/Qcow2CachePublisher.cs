using System.Diagnostics;
using System.Security.Cryptography;
using VmTools.Core.Registry;
using VmTools.Core.State;

namespace VmTools.Core.Images;

/// <summary>
/// Packages a qcow2 as a containerDisk image and pushes it. Blobs the registry already has are never sent
/// again (HEAD first, then a cross-repository mount when another repository holds them); an unchanged disk
/// costs no hashing either, its layer digest being remembered by path, size and mtime.
/// </summary>
public sealed class Qcow2CachePublisher
{
    private const string LayoutVersion = "containerdisk-v1";
    private readonly ImageStore _store;
    private readonly CacheEventLog _events;
    private readonly VmToolsPaths _paths;

    public Qcow2CachePublisher(StateDb db, VmToolsPaths paths)
    {
        _paths = paths.EnsureCreated();
        _store = new ImageStore(db, _paths);
        _events = new CacheEventLog(db);
    }

    public async Task<PublishResult> PublishAsync(PublishRequest request, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (!File.Exists(request.DiskPath))
        {
            throw new VmToolsException("ImageSourceNotFound", FailureKind.NotFound, $"'{request.DiskPath}' does not exist. Build a qcow2 first.") { Target = request.DiskPath };
        }

        Qcow2Header.RequireSelfContained(request.DiskPath);
        var layout = ContainerDiskLayout.Plan(request.DiskPath, request.BootFiles, request.Created);
        var layer = await PrepareLayerAsync(layout, request, progress, ct).ConfigureAwait(false);
        try
        {
            var config = Config(request, layer.DiffId);
            var configDigest = ContentDigest.Of(config).ToString();
            var manifest = OciJson.Serialize(new OciManifest
            {
                MediaType = MediaTypes.OciManifest,
                Config = new OciDescriptor { MediaType = MediaTypes.OciConfig, Digest = configDigest, Size = config.Length },
                Layers = new[]
                {
                    new OciDescriptor
                    {
                        MediaType = request.Compression == LayerCompression.Zstd ? MediaTypes.OciLayerZstd : MediaTypes.OciLayerTar,
                        Digest = layer.Digest,
                        Size = layer.Size,
                        Annotations = new Dictionary<string, string> { ["org.opencontainers.image.title"] = ContainerDiskLayout.DiskEntry },
                    },
                },
                Annotations = Annotations(request),
            });
            var manifestDigest = ContentDigest.Of(manifest).ToString();
            var repo = request.Repository;
            long uploaded = 0;
            int skipped = 0, mounted = 0;
            var finalDigest = manifestDigest;
            if (request.RegistryEnabled)
            {
                var client = new RegistryClient(repo, request.ClientOptions);
                // Repositories on this registry known to hold this layer hold its config too: both can be mounted.
                var mountSources = _store.RepositoriesHolding(repo.Registry, layer.Digest, repo.Repository);
                var blobs = new (string Digest, long Size, Func<Stream, CancellationToken, Task> Write)[]
                {
                    (layer.Digest, layer.Size, layer.Write),
                    (configDigest, config.Length, (s, c) => s.WriteAsync(config, c).AsTask()),
                };
                foreach (var (digest, size, write) in blobs)
                {
                    if (await client.BlobExistsAsync(repo.Repository, digest, ct).ConfigureAwait(false))
                    {
                        skipped++;
                        request.ClientOptions.Verbose?.Invoke($"{digest}: already in {repo.Name}; not uploading.");
                        continue;
                    }

                    var mountedFrom = await TryMountAsync(client, repo, digest, mountSources, ct).ConfigureAwait(false);
                    if (mountedFrom is not null)
                    {
                        mounted++;
                        request.ClientOptions.Verbose?.Invoke($"{digest}: mounted from {mountedFrom}.");
                        continue;
                    }

                    var blobClock = Stopwatch.StartNew();
                    long sent = 0;
                    await client.UploadBlobAsync(repo.Repository, digest, size, async (stream, c) =>
                    {
                        await using var counting = new CountingWriteStream(stream, n =>
                        {
                            sent += n;
                            progress?.Report(new TransferProgress("Pushing " + repo.Name, digest[..19], sent, size, blobClock.Elapsed));
                        });
                        await write(counting, c).ConfigureAwait(false);
                    }, ct).ConfigureAwait(false);
                    uploaded += size;
                }

                if (request.AsIndex)
                {
                    await client.PutManifestAsync(repo.Repository, manifestDigest, manifest, MediaTypes.OciManifest, ct).ConfigureAwait(false);
                    foreach (var tag in request.Tags)
                    {
                        finalDigest = await PutIndexAsync(client, repo, tag, new OciDescriptor
                        {
                            MediaType = MediaTypes.OciManifest, Digest = manifestDigest, Size = manifest.Length, Platform = request.Platform,
                        }, ct).ConfigureAwait(false);
                    }
                }
                else
                {
                    foreach (var tag in request.Tags)
                    {
                        await client.PutManifestAsync(repo.Repository, tag, manifest, MediaTypes.OciManifest, ct).ConfigureAwait(false);
                    }
                }
            }

            // Keep a local copy where it is free (reflink/hard link), so the next Get-Qcow2Cache is a hit with no download.
            // With the registry disabled the local store is the cache, so a copy is made if need be.
            // Adopted under the digest's exclusive lock, as a pull commits: a prune or pull of the same layer waits (or is
            // refused as busy), and Adopt re-checks under the lock whether the store already holds the layer (then keeps it).
            if (request.Compression == LayerCompression.None || !request.RegistryEnabled)
            {
                using (await DigestLock.AcquireAsync(_paths.LockDirectory, layer.Digest, request.ClientOptions.Verbose, ct).ConfigureAwait(false))
                {
                    var adopted = _store.Adopt(layer.Digest, request.DiskPath, request.BootFiles, allowCopy: !request.RegistryEnabled);
                    if (adopted is not null)
                    {
                        foreach (var tag in request.Tags) _store.RecordRef(repo.Registry, repo.Repository, tag, finalDigest, layer.Digest, request.RegistryEnabled ? "Registry" : "Local");
                    }
                }
            }

            _events.Record(CacheEventKind.Pushed, repo.WithTag(request.Tags[0]).ToString(), uploaded, clock.Elapsed, layer.Digest);
            return new PublishResult
            {
                Reference = repo.WithTag(request.Tags[0]).ToString(),
                Tags = request.Tags,
                Digest = finalDigest,
                LayerDigest = layer.Digest,
                LayerSize = layer.Size,
                BytesUploaded = uploaded,
                BlobsSkipped = skipped,
                BlobsMounted = mounted,
                Platform = request.AsIndex ? request.Platform.ToString() : null,
                Destination = request.RegistryEnabled ? "Registry" : "Local",
                Duration = clock.Elapsed,
            };
        }
        finally
        {
            layer.Dispose();
        }
    }

    private static async Task<string?> TryMountAsync(RegistryClient client, ImageReference repo, string digest, IReadOnlyList<string> sources, CancellationToken ct)
    {
        foreach (var other in sources)
        {
            if (await client.TryMountBlobAsync(repo.Repository, digest, other, ct).ConfigureAwait(false)) return other;
        }

        return null;
    }

    private static async Task<string> PutIndexAsync(RegistryClient client, ImageReference repo, string tag, OciDescriptor entry, CancellationToken ct)
    {
        var manifests = new List<OciDescriptor>();
        if (await client.HeadManifestAsync(repo.Repository, tag, ct).ConfigureAwait(false) is not null)
        {
            var existing = await client.GetManifestAsync(repo.Repository, tag, ct).ConfigureAwait(false);
            if (existing.IsIndex)
            {
                manifests.AddRange(existing.AsIndex().Manifests.Where(m => m.Platform?.ToString() != entry.Platform!.ToString()));
            }
        }

        manifests.Add(entry);
        var index = OciJson.Serialize(new OciIndex { MediaType = MediaTypes.OciIndex, Manifests = manifests.OrderBy(m => m.Platform?.ToString(), StringComparer.Ordinal).ToList() });
        return await client.PutManifestAsync(repo.Repository, tag, index, MediaTypes.OciIndex, ct).ConfigureAwait(false);
    }

    private async Task<PreparedLayer> PrepareLayerAsync(ContainerDiskLayout layout, PublishRequest request, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var key = $"{LayoutVersion}|{request.Created.ToUnixTimeSeconds()}|{string.Join(',', request.BootFiles.Select(b => b.Name + ":" + new FileInfo(b.SourcePath).Length))}";
        var clock = Stopwatch.StartNew();
        long hashed = 0;
        void Report(long n)
        {
            hashed += n;
            progress?.Report(new TransferProgress("Hashing " + Path.GetFileName(request.DiskPath), "layer", hashed, layout.TotalSize, clock.Elapsed));
        }

        if (request.Compression == LayerCompression.None)
        {
            if (request.BootFiles.Count == 0 && _store.FindSourceDigest(request.DiskPath, key) is { } known && known.LayerSize == layout.TotalSize)
            {
                return new PreparedLayer(known.LayerDigest, known.LayerDigest, layout.TotalSize, (s, c) => layout.WriteAsync(s, null, c), null);
            }

            using var sink = new HashingWriteSink();
            await layout.WriteAsync(sink, Report, ct).ConfigureAwait(false);
            var digest = ContentDigest.FromHash(sink.GetHash()).ToString();
            if (request.BootFiles.Count == 0) _store.RecordSourceDigest(request.DiskPath, key, digest, layout.TotalSize);
            return new PreparedLayer(digest, digest, layout.TotalSize, (s, c) => layout.WriteAsync(s, null, c), null);
        }

        // zstd: compress once to a temp file; the digest is of the compressed bytes, the diff_id of the tar.
        var temp = Path.Combine(_paths.DownloadDirectory, "push-" + Guid.NewGuid().ToString("N") + ".tar.zst");
        try
        {
            using var tarHash = new HashingWriteSink();
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
            {
                await using var zstd = new ZstdSharp.CompressionStream(file, level: 3, leaveOpen: true);
                await using var tee = new TeeWriteStream(zstd, tarHash);
                await layout.WriteAsync(tee, Report, ct).ConfigureAwait(false);
            }

            await using var compressed = File.OpenRead(temp);
            var digest = ContentDigest.FromHash(await SHA256.HashDataAsync(compressed, ct).ConfigureAwait(false)).ToString();
            var size = new FileInfo(temp).Length;
            return new PreparedLayer(digest, ContentDigest.FromHash(tarHash.GetHash()).ToString(), size, async (s, c) =>
            {
                await using var f = new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
                await f.CopyToAsync(s, 1 << 20, c).ConfigureAwait(false);
            }, temp);
        }
        catch
        {
            Host.AtomicFile.TryDelete(temp);
            throw;
        }
    }

    private static byte[] Config(PublishRequest request, string diffId)
    {
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["org.flightctl.qcow2.created-date"] = request.Created.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture),
            ["org.flightctl.qcow2.description"] = "Cached QCOW2 image for E2E tests",
            ["org.vmtools.qcow2.source-commit"] = request.Revision.Commit,
            ["org.vmtools.qcow2.tree-state"] = request.Revision.TreeState,
            ["org.vmtools.qcow2.architecture"] = request.Platform.Architecture,
        };
        return OciJson.Serialize(new OciImageConfig
        {
            Created = request.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            Architecture = request.Platform.Architecture,
            Os = request.Platform.Os,
            Variant = request.Platform.Variant,
            Config = new OciImageRuntimeConfig { Labels = labels },
            RootFs = new OciRootFs { DiffIds = new[] { diffId } },
        });
    }

    private static IReadOnlyDictionary<string, string> Annotations(PublishRequest request) => new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["org.opencontainers.image.created"] = request.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        ["org.opencontainers.image.revision"] = request.Revision.Commit,
        ["org.opencontainers.image.description"] = "QCOW2 base disk (KubeVirt containerDisk layout) cached by VmTools",
        ["org.vmtools.qcow2.tree-state"] = request.Revision.TreeState,
    };

    private sealed record PreparedLayer(string Digest, string DiffId, long Size, Func<Stream, CancellationToken, Task> Write, string? TempFile) : IDisposable
    {
        public void Dispose()
        {
            if (TempFile is not null) Host.AtomicFile.TryDelete(TempFile);
        }
    }
}
