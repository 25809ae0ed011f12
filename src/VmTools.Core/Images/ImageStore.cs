using VmTools.Core.State;

namespace VmTools.Core.Images;

/// <summary>
/// The local content-addressed store: one folder per layer digest holding <c>disk.qcow2</c> (and boot files),
/// indexed in SQLite with the size and mtime it had when verified, plus which registry tag pointed at it.
/// A folder appears in the store only by an atomic rename of a fully verified download.
/// </summary>
public sealed class ImageStore
{
    public const string DiskFileName = "disk.qcow2";

    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;

    public ImageStore(StateDb db, VmToolsPaths paths)
    {
        _db = db;
        _paths = paths;
    }

    public string FolderFor(string layerDigest) => Path.Combine(_paths.ImageStoreDirectory, layerDigest.Replace(':', '-'));

    public string WorkFolderFor(string layerDigest) => Path.Combine(_paths.DownloadDirectory, layerDigest.Replace(':', '-'));

    /// <summary>A stored disk whose file still has the size and mtime recorded at verification; anything else is not trusted.</summary>
    public StoredImage? FindVerified(string layerDigest)
    {
        using var cmd = _db.Command("SELECT path, size, mtime_ticks FROM images WHERE layer_digest = $d", null, ("$d", layerDigest));
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        var path = r.GetString(0);
        var size = r.GetInt64(1);
        var mtime = r.GetInt64(2);
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != size || info.LastWriteTimeUtc.Ticks != mtime) return null;
        var folder = Path.GetDirectoryName(path)!;
        try
        {
            var boot = Directory.EnumerateFiles(folder).Select(Path.GetFileName).Where(n => n != DiskFileName).Select(n => Path.Combine(folder, n!)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
            return new StoredImage(layerDigest, path, size, boot);
        }
        catch (DirectoryNotFoundException)
        {
            // Removed between the check and the listing (by a caller not holding the digest's lock): not there, not trusted.
            return null;
        }
    }

    /// <summary>
    /// Runs <paramref name="use"/> on the verified stored image while holding the digest's shared lock (waiting, with
    /// <paramref name="waiting"/> told why, while a pull, publish or removal holds it exclusively), so the image's files
    /// exist for as long as <paramref name="use"/> reads them. Null, without calling it, when the store does not (or no
    /// longer) hold a verified image: a prune may have removed it since the caller last saw it.
    /// </summary>
    public async Task<T?> UseVerifiedAsync<T>(string layerDigest, Func<StoredImage, T> use, Action<string>? waiting, CancellationToken ct) where T : class
    {
        using (await DigestLock.AcquireSharedAsync(_paths.LockDirectory, layerDigest, waiting, ct).ConfigureAwait(false))
        {
            return FindVerified(layerDigest) is { } image ? use(image) : null;
        }
    }

    /// <summary>True when the index has a row for the layer (verified or not).</summary>
    public bool Indexes(string layerDigest)
    {
        using var cmd = _db.Command("SELECT 1 FROM images WHERE layer_digest = $d", null, ("$d", layerDigest));
        return cmd.ExecuteScalar() is not null;
    }

    public (string ManifestDigest, string LayerDigest, string Source)? FindRef(string registry, string repository, string tag)
    {
        using var cmd = _db.Command("SELECT manifest_digest, layer_digest, source FROM image_refs WHERE registry=$r AND repository=$p AND tag=$t", null,
            ("$r", registry), ("$p", repository), ("$t", tag));
        using var r = cmd.ExecuteReader();
        return r.Read() ? (r.GetString(0), r.GetString(1), r.GetString(2)) : null;
    }

    public string? LayerForManifest(string registry, string repository, string manifestDigest)
    {
        using var cmd = _db.Command("SELECT layer_digest FROM image_refs WHERE registry=$r AND repository=$p AND manifest_digest=$m LIMIT 1", null,
            ("$r", registry), ("$p", repository), ("$m", manifestDigest));
        return cmd.ExecuteScalar() as string;
    }

    /// <summary>The references (registry/repository:tag) and manifest digests whose layer is the stored disk at <paramref name="diskPath"/>.</summary>
    public IReadOnlyList<(string Reference, string ManifestDigest)> ReferencesForDisk(string diskPath)
    {
        using var cmd = _db.Command(
            "SELECT r.registry, r.repository, r.tag, r.manifest_digest FROM images i JOIN image_refs r ON r.layer_digest = i.layer_digest WHERE i.path = $p ORDER BY r.registry, r.repository, r.tag",
            null, ("$p", Path.GetFullPath(diskPath)));
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string)>();
        while (r.Read()) list.Add(($"{r.GetString(0)}/{r.GetString(1)}:{r.GetString(2)}", r.GetString(3)));
        return list;
    }

    /// <summary>Other repositories on the same registry known to hold a blob, for cross-repository mounts.</summary>
    public IReadOnlyList<string> RepositoriesHolding(string registry, string layerDigest, string except)
    {
        using var cmd = _db.Command("SELECT DISTINCT repository FROM image_refs WHERE registry=$r AND layer_digest=$l AND repository<>$x", null,
            ("$r", registry), ("$l", layerDigest), ("$x", except));
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return list;
    }

    /// <summary>Moves a verified work folder into the store (atomic rename) and records it.</summary>
    public StoredImage Commit(string layerDigest, string workFolder, bool makeReadOnly = true)
    {
        var target = FolderFor(layerDigest);
        if (Directory.Exists(target))
        {
            // A stale or tampered copy lost its index row (FindVerified refused it); the fresh download replaces it.
            var old = target + ".old-" + Guid.NewGuid().ToString("N")[..8];
            Directory.Move(target, old);
            Directory.Delete(old, recursive: true);
        }

        Directory.Move(workFolder, target);
        var disk = Path.Combine(target, DiskFileName);
        // The store is read-only by convention: a write would change the mtime and un-verify the entry.
        if (makeReadOnly) File.SetUnixFileMode(disk, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var info = new FileInfo(disk);
        var now = DateTimeOffset.UtcNow.ToString("O");
        _db.Execute("""
            INSERT INTO images(layer_digest, path, size, mtime_ticks, created_at, last_used_at) VALUES ($d, $p, $s, $m, $n, $n)
            ON CONFLICT(layer_digest) DO UPDATE SET path=$p, size=$s, mtime_ticks=$m, last_used_at=$n
            """, null, ("$d", layerDigest), ("$p", disk), ("$s", info.Length), ("$m", info.LastWriteTimeUtc.Ticks), ("$n", now));
        return FindVerified(layerDigest) ?? throw new InvalidOperationException("The committed image vanished.");
    }

    /// <summary>
    /// Takes a local disk (just pushed or built) into the store under its layer digest, by reflink or hard link,
    /// or by copy when <paramref name="allowCopy"/>. Returns null when only a copy would do and copying is not allowed.
    /// A hard-linked file keeps its mode: it is still the caller's file, and its mtime guards the entry.
    /// The caller holds the digest's exclusive lock, so the check for a stored copy and the commit see no prune or pull in between.
    /// </summary>
    public StoredImage? Adopt(string layerDigest, string diskPath, IReadOnlyList<BootFile> bootFiles, bool allowCopy)
    {
        if (FindVerified(layerDigest) is { } existing) return existing;
        var work = WorkFolderFor(layerDigest) + ".adopt-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(work);
        try
        {
            var target = Path.Combine(work, DiskFileName);
            PlacementMode used;
            try
            {
                used = DiskPlacement.Place(diskPath, target, PlacementMode.Auto);
            }
            catch (IOException) when (!allowCopy)
            {
                return null;
            }

            if (used == PlacementMode.Copy && !allowCopy) return null;
            foreach (var b in bootFiles) DiskPlacement.Place(b.SourcePath, Path.Combine(work, b.Name), PlacementMode.Auto);
            return Commit(layerDigest, work, makeReadOnly: used != PlacementMode.HardLink);
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }

    public void RecordRef(string registry, string repository, string tag, string manifestDigest, string layerDigest, string source)
        => _db.Execute("""
            INSERT INTO image_refs(registry, repository, tag, manifest_digest, layer_digest, source, updated_at) VALUES ($r, $p, $t, $m, $l, $s, $n)
            ON CONFLICT(registry, repository, tag) DO UPDATE SET manifest_digest=$m, layer_digest=$l, source=$s, updated_at=$n
            """, null, ("$r", registry), ("$p", repository), ("$t", tag), ("$m", manifestDigest), ("$l", layerDigest), ("$s", source), ("$n", DateTimeOffset.UtcNow.ToString("O")));

    public void Touch(string layerDigest)
        => _db.Execute("UPDATE images SET last_used_at=$n WHERE layer_digest=$d", null, ("$n", DateTimeOffset.UtcNow.ToString("O")), ("$d", layerDigest));

    /// <summary>Remembers a source file's layer digest by (path, size, mtime, birth time), so re-pushing an unchanged disk costs no hashing.</summary>
    public (string LayerDigest, long LayerSize)? FindSourceDigest(string path, string layout)
    {
        var info = new FileInfo(path);
        using var cmd = _db.Command("SELECT size, mtime_ticks, birth_ticks, layer_digest, layer_size FROM source_digests WHERE path=$p AND layout=$l", null, ("$p", info.FullName), ("$l", layout));
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        return r.GetInt64(0) == info.Length && r.GetInt64(1) == info.LastWriteTimeUtc.Ticks && r.GetInt64(2) == BirthTicks(info.FullName)
            ? (r.GetString(3), r.GetInt64(4)) : null;
    }

    public void RecordSourceDigest(string path, string layout, string layerDigest, long layerSize)
    {
        var info = new FileInfo(path);
        _db.Execute("""
            INSERT INTO source_digests(path, size, mtime_ticks, birth_ticks, layout, layer_digest, layer_size, diff_id) VALUES ($p, $s, $m, $i, $l, $d, $z, $d)
            ON CONFLICT(path, layout) DO UPDATE SET size=$s, mtime_ticks=$m, birth_ticks=$i, layer_digest=$d, layer_size=$z, diff_id=$d
            """, null, ("$p", info.FullName), ("$s", info.Length), ("$m", info.LastWriteTimeUtc.Ticks), ("$i", BirthTicks(info.FullName)), ("$l", layout), ("$d", layerDigest), ("$z", layerSize));
    }

    /// <summary>
    /// Size and nanosecond mtime do most of the work; the birth time (statx, where the filesystem records it)
    /// also tells apart a file replaced by rename with the same size and mtime.
    /// </summary>
    private static long BirthTicks(string path) => File.GetCreationTimeUtc(path).Ticks;
}

/// <summary>A verified disk in the store.</summary>
public sealed record StoredImage(string LayerDigest, string DiskPath, long Size, IReadOnlyList<string> BootFiles);
