using System.Diagnostics;
using VmTools.Core.State;

namespace VmTools.Core.Images;

/// <summary>
/// Fills the cache after a miss with the base a build made: records the build, publishes it under the
/// miss's tags (unless told not to), and answers with the store's verified copy where it kept one: the
/// disk the next hit will find.
/// </summary>
public sealed class Qcow2CacheFiller
{
    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;

    public Qcow2CacheFiller(StateDb db, VmToolsPaths paths)
    {
        _db = db;
        _paths = paths;
    }

    public async Task<Qcow2CacheEntry> FillAsync(CacheFillRequest request, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var tag = request.Tags[0];
        var reference = request.Repository.WithTag(tag).ToString();
        var size = new FileInfo(request.DiskPath).Length;
        new CacheEventLog(_db).Record(CacheEventKind.Built, reference, size, request.BuildTime);
        if (!request.Publish)
        {
            return new Qcow2CacheEntry
            {
                Reference = reference, Tag = tag, Path = request.DiskPath, Size = size, Status = CacheStatus.Built, Source = "Build",
                Duration = request.BuildTime + clock.Elapsed,
            };
        }

        var publishTags = request.TagsFromRevision && !request.Revision.IsClean ? new[] { tag } : request.Tags;
        var result = await new Qcow2CachePublisher(_db, _paths).PublishAsync(new PublishRequest(request.DiskPath, request.Repository, publishTags, request.Revision)
        {
            BootFiles = request.BootFiles,
            Platform = request.Platform,
            Created = request.Created,
            RegistryEnabled = request.RegistryEnabled,
            ClientOptions = request.ClientOptions,
        }, progress, ct).ConfigureAwait(false);
        request.ClientOptions.Verbose?.Invoke($"Published {result.Reference} ({result.Digest}); {result.BytesUploaded} bytes uploaded.");
        var stored = new ImageStore(_db, _paths).FindVerified(result.LayerDigest);
        return new Qcow2CacheEntry
        {
            Reference = result.Reference,
            Tag = publishTags[0],
            Digest = result.Digest,
            LayerDigest = result.LayerDigest,
            Path = stored?.DiskPath ?? request.DiskPath,
            Size = size,
            Status = CacheStatus.Built,
            Source = "Build",
            KernelPath = request.BootFiles.FirstOrDefault(b => BootFile.IsKernel(b.Name))?.SourcePath,
            InitrdPath = request.BootFiles.FirstOrDefault(b => BootFile.IsInitrd(b.Name))?.SourcePath,
            Duration = request.BuildTime + clock.Elapsed,
        };
    }
}
