using System.Globalization;
using System.Text.RegularExpressions;
using VmTools.Core.Host;
using VmTools.Core.State;

namespace VmTools.Core.Volumes;

/// <summary>
/// Volumes and snapshots across the recorded pools. Opening the store is what a host restart
/// exercises: every recorded pool is brought back from its record (never re-created), holds left
/// by interrupted sends are released, volumes are re-mounted, and a volume whose dataset is gone
/// is reported <see cref="VolumeState.Missing"/> instead of being dropped. Every mutation is
/// committed to the state database before the call returns.
/// </summary>
public sealed partial class VolumeStore
{
    /// <summary>The zfs user hold a send places on its snapshot so nothing destroys it mid-stream.</summary>
    public const string SendHoldTag = "vmtools-send";

    private readonly VolumeRecords _records;
    private readonly Dictionary<string, VolumePool> _pools = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IVolumeProvider> _providers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Volume> _volumes = new(StringComparer.Ordinal);
    private readonly Action<string> _warn;

    private VolumeStore(StateDb db, ICommandRunner runner, Action<string>? warn)
    {
        _records = new VolumeRecords(db);
        Runner = runner;
        _warn = warn ?? (_ => { });
    }

    internal ICommandRunner Runner { get; }

    internal VolumeRecords Records => _records;

    public IReadOnlyList<VolumePool> Pools => _pools.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();

    public IReadOnlyList<Volume> Volumes => _volumes.Values.OrderBy(v => v.CreatedAt).ThenBy(v => v.Id, StringComparer.Ordinal).ToList();

    /// <summary>
    /// Opens the store and restores every recorded pool and volume. <paramref name="defaultPool"/>
    /// is asked for a pool only when no pool named "default" is recorded; after a restore it is never called.
    /// </summary>
    public static async Task<VolumeStore> OpenAsync(StateDb db, ICommandRunner runner,
        Func<CancellationToken, Task<VolumePool?>>? defaultPool = null, Action<string>? warn = null, CancellationToken cancellationToken = default)
    {
        var store = new VolumeStore(db, runner, warn);
        await store.RestoreAsync(cancellationToken).ConfigureAwait(false);
        if (defaultPool is not null && !store._pools.ContainsKey(VolumePool.DefaultName)
            && await defaultPool(cancellationToken).ConfigureAwait(false) is { } pool)
        {
            await store.InitializePoolAsync(pool with { Name = VolumePool.DefaultName }, cancellationToken).ConfigureAwait(false);
        }

        return store;
    }

    /// <summary>
    /// Records a pool once: creates its sparse vdev and zpool when the file is absent, imports the
    /// pool when the file exists, fails without touching a file that holds no pool. Initializing an
    /// already recorded pool with the same settings returns it; different settings are refused.
    /// </summary>
    public async Task<VolumePool> InitializePoolAsync(VolumePool pool, CancellationToken cancellationToken = default)
    {
        ValidatePool(pool);
        pool = pool with
        {
            VdevPath = Path.GetFullPath(pool.VdevPath),
            WorkingDirectory = Path.GetFullPath(pool.WorkingDirectory),
            VdevSizeBytes = pool.VdevSizeBytes > 0 ? pool.VdevSizeBytes : ZfsProvider.DefaultVdevSize(pool.VdevPath),
            CreatedAt = pool.CreatedAt == default ? DateTimeOffset.UtcNow : pool.CreatedAt,
            State = VolumePoolState.Online,
            StateDetail = string.Empty,
        };
        if (_pools.TryGetValue(pool.Name, out var recorded))
        {
            if (recorded.PoolName == pool.PoolName && recorded.VdevPath == pool.VdevPath && recorded.WorkingDirectory == pool.WorkingDirectory) return recorded;
            throw new VmToolsException("VolumePoolAlreadyInitialized", FailureKind.ResourceExists,
                $"Pool '{pool.Name}' is already recorded with zfs pool '{recorded.PoolName}' on '{recorded.VdevPath}'.") { Target = pool.Name };
        }

        if (_pools.Values.FirstOrDefault(p => p.PoolName == pool.PoolName) is { } other)
        {
            throw new VmToolsException("VolumePoolAlreadyInitialized", FailureKind.ResourceExists,
                $"zfs pool '{pool.PoolName}' is already recorded as '{other.Name}'.") { Target = pool.PoolName };
        }

        var provider = await ZfsProvider.OpenAsync(pool, Runner, createIfMissing: true, cancellationToken).ConfigureAwait(false);
        _records.AddPool(pool);
        _pools[pool.Name] = pool;
        _providers[pool.Name] = provider;
        return pool;
    }

    public VolumePool GetPool(string name)
        => _pools.TryGetValue(name, out var p) ? p : throw new VmToolsException("VolumePoolNotInitialized", FailureKind.NotFound,
            $"No volume pool named '{name}' is recorded. Run Initialize-VmVolumePool{(name == VolumePool.DefaultName ? string.Empty : " -Name " + name)} first.") { Target = name };

    /// <summary>Finds a volume or snapshot by id, then by name.</summary>
    public Volume GetVolume(string idOrName)
    {
        if (_volumes.TryGetValue(idOrName, out var v)) return v;
        var byName = _volumes.Values.FirstOrDefault(x => x.Name == idOrName);
        return byName ?? throw new VmToolsException("VolumeNotFound", FailureKind.NotFound, $"No volume or snapshot '{idOrName}' is recorded.") { Target = idOrName };
    }

    /// <summary>The snapshots taken of (or received into) a volume, oldest first.</summary>
    public IReadOnlyList<Volume> SnapshotsOf(string volumeId)
    {
        var volume = GetVolume(volumeId);
        return Volumes.Where(v => v.IsSnapshot && v.ParentVolumeId == volume.Id).ToList();
    }

    public async Task<Volume> CreateVolumeAsync(VolumeRequest request, CancellationToken cancellationToken = default)
    {
        var provider = Provider(request.Pool);
        if (!VolumeTypes.All.Contains(request.Type))
        {
            throw new VmToolsException("VolumeTypeInvalid", FailureKind.InvalidArgument,
                $"Volume type '{request.Type}' is not one of: {string.Join(", ", VolumeTypes.All)}.") { Target = request.Type };
        }

        ValidateName(request.Name);
        if (request.QuotaBytes is <= 0)
        {
            throw new VmToolsException("VolumeQuotaInvalid", FailureKind.InvalidArgument, "A quota must be a positive number of bytes.") { Target = request.QuotaBytes };
        }

        var id = NewId();
        var volume = new Volume
        {
            Id = id,
            Name = request.Name,
            Pool = provider.Pool.Name,
            Type = request.Type,
            Dataset = $"{provider.Pool.PoolName}/{request.Type}/{id}",
            Mountpoint = Path.Combine(provider.Pool.MountDirectory(request.Type), id),
            Metadata = new Dictionary<string, string>(request.Metadata ?? new Dictionary<string, string>()),
            QuotaBytes = request.QuotaBytes,
            CreatedAt = Now(),
        };
        await provider.CreateFilesystemAsync(volume.Dataset, volume.Mountpoint, volume.QuotaBytes, cancellationToken).ConfigureAwait(false);
        await CommitOrUndoAsync(volume, provider).ConfigureAwait(false);
        return volume;
    }

    /// <summary>A writable volume that starts as the snapshot's content (zfs clone).</summary>
    public async Task<Volume> CloneAsync(string snapshotId, VolumeRequest request, CancellationToken cancellationToken = default)
    {
        var snapshot = RequireAvailable(GetVolume(snapshotId));
        if (!snapshot.IsSnapshot)
        {
            throw new VmToolsException("VolumeNotASnapshot", FailureKind.InvalidArgument,
                $"'{snapshot.Id}' is a volume, not a snapshot; clone from one of its snapshots (New-VmVolumeSnapshot).") { Target = snapshot.Id };
        }

        ValidateName(request.Name);
        var provider = Provider(snapshot.Pool);
        var id = NewId();
        var clone = new Volume
        {
            Id = id,
            Name = request.Name,
            Pool = snapshot.Pool,
            Type = snapshot.Type,
            Dataset = $"{provider.Pool.PoolName}/{snapshot.Type}/{id}",
            Mountpoint = Path.Combine(provider.Pool.MountDirectory(snapshot.Type), id),
            ParentSnapshotId = snapshot.Id,
            Metadata = new Dictionary<string, string>(request.Metadata ?? new Dictionary<string, string>()),
            DiskImagePath = RebaseDiskImage(snapshot, Path.Combine(provider.Pool.MountDirectory(snapshot.Type), id)),
            CreatedAt = Now(),
        };
        await provider.CloneAsync(snapshot.Dataset, clone.Dataset, clone.Mountpoint, cancellationToken).ConfigureAwait(false);
        await CommitOrUndoAsync(clone, provider).ConfigureAwait(false);
        return clone;
    }

    /// <summary>
    /// Changes a volume's (or snapshot's) recorded metadata: each key of <paramref name="changes"/> is set,
    /// or removed when its value is null; with <paramref name="replace"/> the keys not named are dropped.
    /// Only the record changes (metadata is VmTools' own, not a zfs property), so a Missing volume can be labelled too.
    /// </summary>
    public Volume SetMetadata(string idOrName, IReadOnlyDictionary<string, string?> changes, bool replace)
    {
        var volume = GetVolume(idOrName);
        var metadata = replace ? new Dictionary<string, string>(StringComparer.Ordinal) : new Dictionary<string, string>(volume.Metadata, StringComparer.Ordinal);
        foreach (var (key, value) in changes)
        {
            if (value is null) metadata.Remove(key);
            else metadata[key] = value;
        }

        _records.SetMetadata(volume.Id, metadata);
        return _volumes[volume.Id] = volume with { Metadata = metadata };
    }

    /// <summary>Takes <c>dataset@&lt;new id&gt;</c> and shows it read-only under the working directory.</summary>
    public async Task<Volume> CreateSnapshotAsync(string volumeId, CancellationToken cancellationToken = default)
    {
        var volume = RequireAvailable(GetVolume(volumeId));
        if (volume.IsSnapshot)
        {
            throw new VmToolsException("VolumeIsASnapshot", FailureKind.InvalidArgument,
                $"'{volume.Id}' is already a snapshot; snapshot its volume '{volume.ParentVolumeId}' instead.") { Target = volume.Id };
        }

        var provider = Provider(volume.Pool);
        var id = NewId();
        await provider.CreateSnapshotAsync(volume.Dataset + "@" + id, cancellationToken).ConfigureAwait(false);
        return await RecordSnapshotAsync(provider, volume, volume.Dataset + "@" + id, id, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Removes a volume or snapshot. A volume with snapshots is refused unless <paramref name="recurse"/>;
    /// a snapshot some clone was made from is always refused. A Missing volume just loses its record.
    /// </summary>
    public async Task<IReadOnlyList<Volume>> RemoveAsync(string idOrName, bool recurse, CancellationToken cancellationToken = default)
    {
        var volume = GetVolume(idOrName);
        var doomed = new List<Volume>();
        if (!volume.IsSnapshot)
        {
            var snapshots = SnapshotsOf(volume.Id);
            if (snapshots.Count > 0 && !recurse)
            {
                throw new VmToolsException("VolumeHasSnapshots", FailureKind.InvalidOperation,
                    $"Volume '{volume.Id}' has {snapshots.Count} snapshot(s); remove them first or use -Recurse.") { Target = volume.Id };
            }

            doomed.AddRange(snapshots.Reverse());
        }

        doomed.Add(volume);
        var doomedIds = doomed.Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
        if (_volumes.Values.FirstOrDefault(c => c.ParentSnapshotId is { } p && doomedIds.Contains(p) && !doomedIds.Contains(c.Id)) is { } clone)
        {
            throw new VmToolsException("VolumeHasDependentClones", FailureKind.InvalidOperation,
                $"Volume '{clone.Id}' was cloned from snapshot '{clone.ParentSnapshotId}'; remove the clone first.") { Target = volume.Id };
        }

        foreach (var v in doomed)
        {
            if (v.State == VolumeState.Available)
            {
                var provider = Provider(v.Pool);
                if (v.ViewDataset is not null) await provider.DestroyAsync(v.ViewDataset, cancellationToken).ConfigureAwait(false);
                await provider.DestroyAsync(v.Dataset, cancellationToken).ConfigureAwait(false);
            }

            _records.RemoveVolume(v.Id);
            _volumes.Remove(v.Id);
            TryDeleteEmptyDirectory(v.Mountpoint);
        }

        return doomed;
    }

    /// <summary>The snapshots a volume already has, as a sender needs them to pick an incremental base.</summary>
    public async Task<IReadOnlyList<VolumeHave>> ListHavesAsync(string volumeId, CancellationToken cancellationToken = default)
    {
        var volume = RequireAvailable(GetVolume(volumeId));
        var snaps = await Provider(volume.Pool).ListSnapshotsAsync(volume.FilesystemDataset, cancellationToken).ConfigureAwait(false);
        return snaps.Select(s => new VolumeHave(s.ShortName, s.Guid, s.CreateTxg)).ToList();
    }

    /// <summary>Creates a disk image file inside a volume (raw sparse or qcow2) and records its path.</summary>
    public async Task<Volume> CreateDiskImageAsync(string volumeId, long sizeBytes, DiskImageFormat format, string? fileName = null, CancellationToken cancellationToken = default)
    {
        var volume = RequireAvailable(GetVolume(volumeId));
        if (volume.IsSnapshot)
        {
            throw new VmToolsException("VolumeIsASnapshot", FailureKind.InvalidArgument, $"'{volume.Id}' is a read-only snapshot; clone it first.") { Target = volume.Id };
        }

        if (volume.DiskImagePath is not null)
        {
            throw new VmToolsException("VolumeDiskExists", FailureKind.ResourceExists, $"Volume '{volume.Id}' already holds disk image '{volume.DiskImagePath}'.") { Target = volume.Id };
        }

        if (sizeBytes <= 0)
        {
            throw new VmToolsException("VolumeDiskSizeInvalid", FailureKind.InvalidArgument, "A disk size must be a positive number of bytes.") { Target = sizeBytes };
        }

        fileName ??= format == DiskImageFormat.Qcow2 ? "disk.qcow2" : "disk.img";
        if (fileName.Contains('/') || fileName is "." or "..")
        {
            throw new VmToolsException("VolumeDiskNameInvalid", FailureKind.InvalidArgument, $"'{fileName}' is not a plain file name.") { Target = fileName };
        }

        var path = Path.Combine(volume.Mountpoint, fileName);
        await DiskImageFile.CreateAsync(Runner, path, sizeBytes, format, cancellationToken).ConfigureAwait(false);
        _records.SetDiskImage(volume.Id, path);
        var updated = volume with { DiskImagePath = path };
        _volumes[volume.Id] = updated;
        return updated;
    }

    internal IVolumeProvider Provider(string poolName)
    {
        var pool = GetPool(poolName);
        if (_providers.TryGetValue(pool.Name, out var provider)) return provider;
        throw new VmToolsException("VolumePoolUnavailable", FailureKind.ResourceUnavailable,
            $"Pool '{pool.Name}' (zfs pool '{pool.PoolName}') could not be brought online: {pool.StateDetail}") { Target = pool.Name };
    }

    internal Volume RequireAvailable(Volume volume)
    {
        _ = Provider(volume.Pool);
        if (volume.State == VolumeState.Missing)
        {
            throw new VmToolsException("VolumeMissing", FailureKind.ResourceUnavailable,
                $"Volume '{volume.Id}' is recorded but its dataset '{volume.Dataset}' is gone; Remove-VmVolume clears the record.") { Target = volume.Id };
        }

        return volume;
    }

    /// <summary>Records a zfs snapshot (taken here or received) as a snapshot volume with a new id and a read-only view.</summary>
    internal async Task<Volume> RecordSnapshotAsync(IVolumeProvider provider, Volume parent, string snapshot, string id, CancellationToken cancellationToken)
    {
        var snap = new Volume
        {
            Id = id,
            Pool = parent.Pool,
            Type = parent.Type,
            Dataset = snapshot,
            Mountpoint = Path.Combine(provider.Pool.MountDirectory(parent.Type), id),
            ViewDataset = $"{provider.Pool.PoolName}/{VolumeTypes.Views}/{id}",
            ParentVolumeId = parent.Id,
            DiskImagePath = RebaseDiskImage(parent, Path.Combine(provider.Pool.MountDirectory(parent.Type), id)),
            CreatedAt = Now(),
        };
        try
        {
            await provider.CreateReadOnlyViewAsync(snap.Dataset, snap.ViewDataset, snap.Mountpoint, cancellationToken).ConfigureAwait(false);
            _records.AddVolume(snap);
        }
        catch
        {
            await provider.DestroyAsync(snap.ViewDataset, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        _volumes[snap.Id] = snap;
        return snap;
    }

    /// <summary>Records the disk image a volume holds now (null: none), as after a rollback.</summary>
    internal Volume SetDiskImage(Volume volume, string? path)
    {
        _records.SetDiskImage(volume.Id, path);
        return _volumes[volume.Id] = volume with { DiskImagePath = path };
    }

    internal static string NewId() => Guid.NewGuid().ToString("D");

    private async Task CommitOrUndoAsync(Volume volume, IVolumeProvider provider)
    {
        try
        {
            _records.AddVolume(volume);
        }
        catch
        {
            await provider.DestroyAsync(volume.Dataset, CancellationToken.None).ConfigureAwait(false);
            TryDeleteEmptyDirectory(volume.Mountpoint);
            throw;
        }

        _volumes[volume.Id] = volume;
    }

    private async Task RestoreAsync(CancellationToken cancellationToken)
    {
        foreach (var pool in _records.Pools())
        {
            try
            {
                _providers[pool.Name] = await ZfsProvider.OpenAsync(pool, Runner, createIfMissing: false, cancellationToken).ConfigureAwait(false);
                _pools[pool.Name] = pool;
            }
            catch (VmToolsException e) when (e.ErrorId != "ZfsUnavailable")
            {
                // One lost pool must not make every other pool unusable (flynn refused to start instead).
                _pools[pool.Name] = pool with { State = VolumePoolState.Unavailable, StateDetail = e.Message };
                _warn($"Volume pool '{pool.Name}' is unavailable: {e.Message}");
            }
        }

        foreach (var (poolName, snapshot, tag) in _records.Holds())
        {
            if (!_providers.TryGetValue(poolName, out var provider)) continue;
            await provider.ReleaseAsync(snapshot, tag, cancellationToken).ConfigureAwait(false);
            _records.RemoveHold(snapshot, tag);
        }

        var datasets = new Dictionary<string, IReadOnlyDictionary<string, ZfsDataset>>(StringComparer.Ordinal);
        foreach (var (name, provider) in _providers)
        {
            datasets[name] = await provider.ListDatasetsAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var v in _records.Volumes())
        {
            var volume = v;
            if (!datasets.TryGetValue(v.Pool, out var found) || !found.ContainsKey(v.Dataset))
            {
                volume = v with { State = VolumeState.Missing };
                _warn($"Volume '{v.Id}' is missing: dataset '{v.Dataset}' does not exist.");
            }
            else
            {
                var provider = _providers[v.Pool];
                var shown = v.ViewDataset ?? v.Dataset;
                if (!found.TryGetValue(shown, out var ds))
                {
                    // The snapshot survived but its read-only view did not: show it again.
                    await provider.CreateReadOnlyViewAsync(v.Dataset, shown, v.Mountpoint, cancellationToken).ConfigureAwait(false);
                }
                else if (!ds.Mounted)
                {
                    await provider.EnsureMountedAsync(shown, cancellationToken).ConfigureAwait(false);
                }
            }

            _volumes[volume.Id] = volume;
        }
    }

    private static string? RebaseDiskImage(Volume source, string mountpoint)
        => source.DiskImagePath is { } p ? Path.Combine(mountpoint, Path.GetFileName(p)) : null;

    private static void ValidatePool(VolumePool pool)
    {
        if (!PoolNamePattern().IsMatch(pool.PoolName))
        {
            throw new VmToolsException("VolumePoolNameInvalid", FailureKind.InvalidArgument,
                $"'{pool.PoolName}' is not a valid zfs pool name (a letter, then letters, digits, '-', '_', '.').") { Target = pool.PoolName };
        }

        if (!NamePattern().IsMatch(pool.Name))
        {
            throw new VmToolsException("VolumePoolNameInvalid", FailureKind.InvalidArgument, $"'{pool.Name}' is not a valid pool record name.") { Target = pool.Name };
        }

        if (pool.VdevSizeBytes != 0 && pool.VdevSizeBytes < ZfsProvider.MinimumVdevSize)
        {
            throw new VmToolsException("VolumePoolSizeInvalid", FailureKind.InvalidArgument,
                $"A vdev must be at least {ZfsProvider.MinimumVdevSize >> 20} MiB; {pool.VdevSizeBytes} bytes was asked for.") { Target = pool.VdevSizeBytes };
        }

        if (Directory.Exists(pool.VdevPath))
        {
            throw new VmToolsException("VolumeVdevNotAPool", FailureKind.InvalidArgument, $"'{pool.VdevPath}' is a directory, not a vdev file.") { Target = pool.VdevPath };
        }
    }

    private void ValidateName(string? name)
    {
        if (name is null) return;
        if (!NamePattern().IsMatch(name) || Guid.TryParse(name, out _))
        {
            throw new VmToolsException("VolumeNameInvalid", FailureKind.InvalidArgument,
                $"'{name}' is not a valid volume name (1–64 letters, digits, '.', '_', '-'; not an id).") { Target = name };
        }

        if (_volumes.Values.Any(v => v.Name == name))
        {
            throw new VmToolsException("VolumeNameInUse", FailureKind.ResourceExists, $"A volume named '{name}' already exists.") { Target = name };
        }
    }

    // UTC, stored as round-trip ("O") text: a restored CreatedAt equals the one returned at creation, tick for tick.
    private static DateTimeOffset Now() => DateTimeOffset.UtcNow;

    private static void TryDeleteEmptyDirectory(string dir)
    {
        try { Directory.Delete(dir); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex PoolNamePattern();
}
