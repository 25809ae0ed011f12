using System.Diagnostics;
using VmTools.Core.State;

namespace VmTools.Core.Images;

/// <summary>
/// Removes images from the local store: one by digest, or the ones a <see cref="PruneRequest"/> selects.
/// A removal holds the digest's lock (taken without waiting: an image a pull is writing or a hit is handing out
/// is busy, not removed), re-checks the VM records (and, when pruning, the last use) under it, drops the index rows and then deletes the store's own folder
/// for that digest, never a file placed elsewhere with -Destination.
/// </summary>
public sealed class ImagePruner
{
    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;
    private readonly ImageCatalog _catalog;
    private readonly ImageStore _store;

    public ImagePruner(StateDb db, VmToolsPaths paths)
    {
        _db = db;
        _paths = paths.EnsureCreated();
        _catalog = new ImageCatalog(db, _paths);
        _store = new ImageStore(db, _paths);
    }

    /// <summary>The images a prune would remove, least recently used first; <paramref name="note"/> hears why in-use images stay.</summary>
    public IReadOnlyList<CachedImage> Select(PruneRequest request, Action<string>? note = null)
    {
        if (!request.HasCriterion) return Array.Empty<CachedImage>();
        var all = _catalog.List();
        foreach (var used in all.Where(i => i.InUse))
        {
            note?.Invoke($"Keeping {used}: used by VM {string.Join(", ", used.UsedBy)}.");
        }

        var chosen = new List<CachedImage>();
        if (request.OlderThan is not null || request.KeepLatest is not null)
        {
            var kept = new HashSet<string>(StringComparer.Ordinal);
            if (request.KeepLatest is { } keep)
            {
                foreach (var group in all.SelectMany(i => (i.Repositories.Count == 0 ? new[] { string.Empty } : i.Repositories).Select(r => (Repository: r, Image: i)))
                             .GroupBy(x => x.Repository, StringComparer.Ordinal))
                {
                    foreach (var x in group.OrderByDescending(x => x.Image.LastUsed).Take(keep)) kept.Add(x.Image.LayerDigest);
                }
            }

            var cutoff = request.OlderThan is { } age ? request.Now - age : (DateTimeOffset?)null;
            chosen.AddRange(all.Where(i => !i.InUse && !kept.Contains(i.LayerDigest) && (cutoff is null || i.LastUsed < cutoff)));
        }

        if (request.MaxBytes is { } max)
        {
            var remaining = all.Where(i => !chosen.Contains(i)).Sum(i => i.Size);
            foreach (var lru in all.Where(i => !i.InUse && !chosen.Contains(i)).OrderBy(i => i.LastUsed).ToList())
            {
                if (remaining <= max) break;
                chosen.Add(lru);
                remaining -= lru.Size;
            }
        }

        return chosen.OrderBy(i => i.LastUsed).ThenBy(i => i.LayerDigest, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Removes one image. Refuses (<c>Qcow2CacheImageInUse</c>) while a VM record uses it unless
    /// <paramref name="force"/>; refuses (<c>Qcow2CacheImageBusy</c>) while a pull or a hit holds its lock.
    /// </summary>
    public CachedImageRemoval Remove(string layerDigest, bool force) => Remove(layerDigest, force, chosenLastUsed: null)!;

    /// <summary>
    /// Removes an image <see cref="Select"/> chose, unless a hit or pull used it after it was chosen: null then, and the
    /// image stays. The choice was made by last use outside the lock; the use is re-read under it.
    /// </summary>
    public CachedImageRemoval? RemoveChosen(CachedImage chosen, bool force) => Remove(chosen.LayerDigest, force, chosen.LastUsed);

    private CachedImageRemoval? Remove(string layerDigest, bool force, DateTimeOffset? chosenLastUsed)
    {
        var clock = Stopwatch.StartNew();
        using var held = DigestLock.TryAcquire(_paths.LockDirectory, layerDigest)
            ?? throw new VmToolsException("Qcow2CacheImageBusy", FailureKind.ResourceBusy,
                $"{layerDigest} is being pulled, published or handed out right now; it was left in place.") { Target = layerDigest };
        var image = _catalog.List(new[] { layerDigest }).FirstOrDefault(i => i.LayerDigest == layerDigest)
            ?? throw new VmToolsException("Qcow2CacheImageNotFound", FailureKind.NotFound,
                $"The local store holds no image {layerDigest}. Get-Qcow2CacheImage lists what it holds.") { Target = layerDigest };
        if (chosenLastUsed is { } chosenAt && image.LastUsed > chosenAt) return null;
        if (image.InUse && !force)
        {
            throw new VmToolsException("Qcow2CacheImageInUse", FailureKind.InvalidOperation,
                $"{image} is the base of VM {string.Join(", ", image.UsedBy)}; their overlays depend on it. Remove the VMs first, or use -Force.") { Target = layerDigest };
        }

        var folder = _store.FolderFor(layerDigest);
        var (_, freed) = ImageCatalog.Allocation(folder);
        _db.InTransaction(tx =>
        {
            _db.Execute("DELETE FROM image_refs WHERE layer_digest = $d", tx, ("$d", layerDigest));
            _db.Execute("DELETE FROM images WHERE layer_digest = $d", tx, ("$d", layerDigest));
        });
        if (Directory.Exists(folder))
        {
            // Renamed first so that a crash mid-delete leaves no half folder under the digest's own name.
            var doomed = folder + ".removing-" + Guid.NewGuid().ToString("N")[..8];
            Directory.Move(folder, doomed);
            Directory.Delete(doomed, recursive: true);
        }

        new CacheEventLog(_db).Record(CacheEventKind.Evicted, image.References.FirstOrDefault(), freed, clock.Elapsed, layerDigest);
        return new CachedImageRemoval(layerDigest, image.References, freed, image.UsedBy);
    }
}
