using System.Globalization;
using VmTools.Core.Host;
using VmTools.Core.Registry;
using VmTools.Core.State;
using VmTools.Core.Vms;

namespace VmTools.Core.Images;

/// <summary>
/// Lists the local store as <see cref="CachedImage"/>s: the images and image_refs tables joined with the
/// VM records that boot from each image. A VM's base may be the store's own file or a -Destination placed
/// from it; the store's file matters to the VM when it is that path or a hard link to it (a copy or reflink
/// is a separate file that outlives the store's).
/// </summary>
public sealed class ImageCatalog
{
    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;

    public ImageCatalog(StateDb db, VmToolsPaths paths)
    {
        _db = db;
        _paths = paths;
    }

    /// <summary>Every stored image (optionally only those matching a digest or reference pattern), most recently used first.</summary>
    public IReadOnlyList<CachedImage> List(IReadOnlyList<string>? digests = null, IReadOnlyList<string>? references = null)
    {
        var refs = ReadRefs();
        var vmBases = new VmStore(_db, _paths).List()
            .Select(vm => (vm.Name, Path: System.IO.Path.GetFullPath(vm.ImagePath), Identity: FileIdentity.Of(vm.ImagePath)))
            .ToList();
        var images = new List<CachedImage>();
        using (var cmd = _db.Command("SELECT layer_digest, path, size, created_at, last_used_at FROM images"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                var digest = r.GetString(0);
                var path = r.GetString(1);
                var mine = refs.TryGetValue(digest, out var list) ? list : new List<(string Reference, string Repository, string Manifest)>();
                var identity = FileIdentity.Of(path);
                var usedBy = vmBases.Where(v => v.Path == System.IO.Path.GetFullPath(path) || (identity is { } id && v.Identity is { } vi && vi.IsSameFile(id)))
                    .Select(v => v.Name).Distinct(StringComparer.Ordinal).ToArray();
                var (size, reclaimable) = Allocation(new ImageStore(_db, _paths).FolderFor(digest));
                images.Add(new CachedImage
                {
                    LayerDigest = digest,
                    Path = path,
                    Size = size,
                    ReclaimableBytes = reclaimable,
                    DiskLength = r.GetInt64(2),
                    References = mine.Select(m => m.Reference).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(),
                    ManifestDigests = mine.Select(m => m.Manifest).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(),
                    Repositories = mine.Select(m => m.Repository).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(),
                    FirstUsed = DateTimeOffset.Parse(r.GetString(3), CultureInfo.InvariantCulture),
                    LastUsed = DateTimeOffset.Parse(r.GetString(4), CultureInfo.InvariantCulture),
                    UsedBy = usedBy,
                });
            }
        }

        var digestPatterns = digests?.Select(d => new ReferencePattern(d)).ToArray();
        var referencePatterns = references?.Select(ReferenceMatcher).ToArray();
        return images
            .Where(i => digestPatterns is null || digestPatterns.Any(p => p.IsMatch(i.LayerDigest) || i.ManifestDigests.Any(p.IsMatch)))
            .Where(i => referencePatterns is null || referencePatterns.Any(p => i.References.Any(p)))
            .OrderByDescending(i => i.LastUsed).ThenBy(i => i.LayerDigest, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Formats a recorded reference: a digest pin is recorded with the manifest digest in the tag column.</summary>
    internal static string FormatReference(string registry, string repository, string tag)
        => tag.Contains(':', StringComparison.Ordinal) ? $"{registry}/{repository}@{tag}" : $"{registry}/{repository}:{tag}";

    /// <summary>
    /// A pattern with wildcards matches the recorded text (registry/repository:tag); a literal is parsed and
    /// normalised like a pull (ubuntu → docker.io/library/ubuntu), and without a tag or digest names every tag of that repository.
    /// </summary>
    private static Func<string, bool> ReferenceMatcher(string text)
    {
        var pattern = new ReferencePattern(text);
        if (pattern.HasWildcards) return pattern.IsMatch;
        var parsed = ImageReference.Parse(text);
        if (parsed.Tag is null && parsed.Digest is null) return r => r.StartsWith(parsed.Name + ":", StringComparison.Ordinal) || r.StartsWith(parsed.Name + "@", StringComparison.Ordinal);
        var exact = parsed.Digest is not null ? $"{parsed.Name}@{parsed.Digest}" : $"{parsed.Name}:{parsed.Tag}";
        return r => r == exact;
    }

    private Dictionary<string, List<(string Reference, string Repository, string Manifest)>> ReadRefs()
    {
        var byLayer = new Dictionary<string, List<(string, string, string)>>(StringComparer.Ordinal);
        using var cmd = _db.Command("SELECT registry, repository, tag, manifest_digest, layer_digest FROM image_refs");
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            var layer = r.GetString(4);
            if (!byLayer.TryGetValue(layer, out var list)) byLayer[layer] = list = new();
            list.Add((FormatReference(r.GetString(0), r.GetString(1), r.GetString(2)), $"{r.GetString(0)}/{r.GetString(1)}", r.GetString(3)));
        }

        return byLayer;
    }

    /// <summary>Allocated bytes of the folder's files, and the part only this folder holds (link count 1).</summary>
    internal static (long Size, long Reclaimable) Allocation(string folder)
    {
        if (!Directory.Exists(folder)) return (0, 0);
        long size = 0, reclaimable = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            if (FileIdentity.Of(file, followSymlinks: false) is not { } id) continue;
            size += id.AllocatedBytes;
            if (id.LinkCount == 1) reclaimable += id.AllocatedBytes;
        }

        return (size, reclaimable);
    }
}
