using VmTools.Core.Vms;

namespace VmTools.Core.Volumes;

/// <summary>What a rollback would do: the volume, the snapshot it returns to, and the newer snapshots that go with it (oldest first).</summary>
public sealed record VolumeRollbackPlan(Volume Volume, Volume Snapshot, IReadOnlyList<Volume> Newer);

/// <summary>
/// Returns a volume to one of its snapshots (zfs rollback). zfs only rolls back to the newest
/// snapshot, so newer ones are destroyed first, and only when asked: they are history someone
/// kept. Only snapshots VmTools recorded are destroyed (each with its read-only view and its
/// record), never one taken by hand, nor one a clone was made from; and not while a live VM has a
/// disk image of the volume or of one of those snapshots attached (Start-FlightVm -Volume).
/// </summary>
public sealed class VolumeRollback
{
    private readonly VolumeStore _store;

    public VolumeRollback(VolumeStore store) => _store = store;

    /// <summary>
    /// Resolves and checks a rollback without changing anything. <paramref name="snapshot"/> is the
    /// snapshot's id or zfs snapshot name. Refusals: VolumeSnapshotNotFound, VolumeSnapshotNotLatest
    /// (newer snapshots and no <paramref name="destroyNewer"/>), VolumeSnapshotNotRecorded (a newer
    /// snapshot VmTools did not take), VolumeHasDependentClones, VolumeInUseByVm.
    /// </summary>
    /// <param name="vms">The VM records whose attached disks are checked; null skips the check.</param>
    public async Task<VolumeRollbackPlan> PlanAsync(string volumeIdOrName, string snapshot, bool destroyNewer, VmStore? vms, CancellationToken cancellationToken = default)
    {
        var volume = _store.RequireAvailable(_store.GetVolume(volumeIdOrName));
        if (volume.IsSnapshot)
        {
            throw new VmToolsException("VolumeIsASnapshot", FailureKind.InvalidArgument,
                $"'{volume.Id}' is a snapshot; roll back its volume '{volume.ParentVolumeId}' to it instead.") { Target = volume.Id };
        }

        var recorded = _store.SnapshotsOf(volume.Id);
        var target = recorded.FirstOrDefault(s => s.Id == snapshot || s.SnapshotName == snapshot)
            ?? throw NotFound(volume, snapshot);

        // zfs' own list and order (createtxg): a snapshot taken by hand is newer too, and blocks the rollback.
        var onDisk = await _store.Provider(volume.Pool).ListSnapshotsAsync(volume.Dataset, cancellationToken).ConfigureAwait(false);
        var position = onDisk.ToList().FindIndex(s => s.Name == target.Dataset);
        if (position < 0) throw NotFound(volume, snapshot);
        var byDataset = recorded.ToDictionary(s => s.Dataset, StringComparer.Ordinal);
        var newerOnDisk = onDisk.Skip(position + 1).ToList();
        if (newerOnDisk.Where(s => !byDataset.ContainsKey(s.Name)).Select(s => s.Name).ToList() is { Count: > 0 } foreign)
        {
            throw new VmToolsException("VolumeSnapshotNotRecorded", FailureKind.InvalidOperation,
                $"Volume '{volume.Id}' has newer snapshots VmTools did not take ({string.Join(", ", foreign)}); it destroys only its own. Remove them with zfs destroy first.") { Target = volume.Id };
        }

        var newer = newerOnDisk.Select(s => byDataset[s.Name]).ToList();
        if (newer.Count > 0 && !destroyNewer)
        {
            throw new VmToolsException("VolumeSnapshotNotLatest", FailureKind.InvalidOperation,
                $"Snapshot '{target.Id}' is not the newest of volume '{volume.Id}': rolling back to it destroys {Describe(newer)}. Use -DestroyNewer to do that.") { Target = target.Id };
        }

        var doomed = newer.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        if (_store.Volumes.FirstOrDefault(c => c.ParentSnapshotId is { } p && doomed.Contains(p)) is { } clone)
        {
            throw new VmToolsException("VolumeHasDependentClones", FailureKind.InvalidOperation,
                $"Volume '{clone.Id}' was cloned from the newer snapshot '{clone.ParentSnapshotId}'; remove the clone first.") { Target = volume.Id };
        }

        if (vms is not null) RefuseLiveVms(vms, newer.Prepend(volume).ToList());
        return new VolumeRollbackPlan(volume, target, newer);
    }

    /// <summary>Plans (with every refusal of <see cref="PlanAsync"/>), destroys the newer snapshots newest first, rolls back, and returns the volume.</summary>
    public async Task<Volume> RestoreAsync(string volumeIdOrName, string snapshot, bool destroyNewer, VmStore? vms, CancellationToken cancellationToken = default)
    {
        var plan = await PlanAsync(volumeIdOrName, snapshot, destroyNewer, vms, cancellationToken).ConfigureAwait(false);
        foreach (var newer in plan.Newer.Reverse())
        {
            await _store.RemoveAsync(newer.Id, recurse: false, cancellationToken).ConfigureAwait(false);
        }

        await _store.Provider(plan.Volume.Pool).RollbackAsync(plan.Snapshot.Dataset, cancellationToken).ConfigureAwait(false);

        // The disk image record follows the content: the one the snapshot held (or none).
        var disk = plan.Snapshot.DiskImagePath is { } p ? Path.Combine(plan.Volume.Mountpoint, Path.GetFileName(p)) : null;
        var volume = _store.GetVolume(plan.Volume.Id);
        return disk == volume.DiskImagePath ? volume : _store.SetDiskImage(volume, disk);
    }

    /// <summary>"N newer snapshot(s): id (zfs name), …" for messages and -WhatIf.</summary>
    public static string Describe(IReadOnlyList<Volume> snapshots)
        => $"{snapshots.Count} newer snapshot(s): {string.Join(", ", snapshots.Select(s => s.SnapshotName == s.Id ? s.Id : $"{s.Id} ({s.SnapshotName})"))}";

    private static void RefuseLiveVms(VmStore vms, IReadOnlyList<Volume> volumes)
    {
        var folders = volumes.Select(v => v.Mountpoint.TrimEnd('/') + "/").ToList();
        ProcessTable? processes = null;
        foreach (var vm in vms.List())
        {
            var attached = vm.VolumePaths.FirstOrDefault(p => folders.Any(f => Path.GetFullPath(p).StartsWith(f, StringComparison.Ordinal)));
            if (attached is null) continue;
            processes ??= ProcessTable.Scan();
            if (!HandleDiscovery.Discover(vm, processes, BootId.Current).Alive) continue;
            throw new VmToolsException("VolumeInUseByVm", FailureKind.ResourceBusy,
                $"VM '{vm.Name}' is running with '{attached}' attached; stop it first (Stop-FlightVm), a rollback under a running guest corrupts its disk.") { Target = volumes[0].Id };
        }
    }

    private static VmToolsException NotFound(Volume volume, string snapshot)
        => new("VolumeSnapshotNotFound", FailureKind.NotFound,
            $"Volume '{volume.Id}'{(volume.Name is null ? string.Empty : $" ({volume.Name})")} has no snapshot '{snapshot}' (Get-VmVolumeSnapshot lists them).") { Target = snapshot };
}
