using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using VmTools.Core.State;

namespace VmTools.Core.Volumes;

/// <summary>
/// The volume tables of the state database: pools (providers recorded once), volumes and
/// snapshots, and holds placed by sends in progress. Every write commits before it returns.
/// </summary>
internal sealed class VolumeRecords
{
    private readonly StateDb _db;

    public VolumeRecords(StateDb db) => _db = db;

    public IReadOnlyList<VolumePool> Pools()
    {
        using var cmd = _db.Command("SELECT name, kind, pool, vdev_path, vdev_size, working_dir, created_at FROM volume_pools ORDER BY name");
        using var r = cmd.ExecuteReader();
        var list = new List<VolumePool>();
        while (r.Read())
        {
            list.Add(new VolumePool
            {
                Name = r.GetString(0),
                Kind = r.GetString(1),
                PoolName = r.GetString(2),
                VdevPath = r.GetString(3),
                VdevSizeBytes = r.GetInt64(4),
                WorkingDirectory = r.GetString(5),
                CreatedAt = DateTimeOffset.Parse(r.GetString(6), CultureInfo.InvariantCulture),
            });
        }

        return list;
    }

    public void AddPool(VolumePool pool)
    {
        try
        {
            _db.Execute("INSERT INTO volume_pools(name, kind, pool, vdev_path, vdev_size, working_dir, created_at) VALUES ($n, $k, $p, $v, $s, $w, $c)", null,
                ("$n", pool.Name), ("$k", pool.Kind), ("$p", pool.PoolName), ("$v", pool.VdevPath), ("$s", pool.VdevSizeBytes),
                ("$w", pool.WorkingDirectory), ("$c", pool.CreatedAt.ToString("O", CultureInfo.InvariantCulture)));
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new VmToolsException("VolumePoolAlreadyInitialized", FailureKind.ResourceExists,
                $"A pool named '{pool.Name}' or using zfs pool '{pool.PoolName}' is already recorded.", e) { Target = pool.Name };
        }
    }

    public IReadOnlyList<Volume> Volumes()
    {
        using var cmd = _db.Command("""
            SELECT id, name, pool_name, type, dataset, mountpoint, view_dataset, parent_volume_id, parent_snapshot_id,
                   metadata, quota_bytes, disk_image_path, created_at
            FROM volumes ORDER BY created_at, id
            """);
        using var r = cmd.ExecuteReader();
        var list = new List<Volume>();
        while (r.Read())
        {
            list.Add(new Volume
            {
                Id = r.GetString(0),
                Name = r.IsDBNull(1) ? null : r.GetString(1),
                Pool = r.GetString(2),
                Type = r.GetString(3),
                Dataset = r.GetString(4),
                Mountpoint = r.GetString(5),
                ViewDataset = r.IsDBNull(6) ? null : r.GetString(6),
                ParentVolumeId = r.IsDBNull(7) ? null : r.GetString(7),
                ParentSnapshotId = r.IsDBNull(8) ? null : r.GetString(8),
                Metadata = JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(9)) ?? new Dictionary<string, string>(),
                QuotaBytes = r.IsDBNull(10) ? null : r.GetInt64(10),
                DiskImagePath = r.IsDBNull(11) ? null : r.GetString(11),
                CreatedAt = DateTimeOffset.Parse(r.GetString(12), CultureInfo.InvariantCulture),
            });
        }

        return list;
    }

    public void AddVolume(Volume v)
    {
        try
        {
            _db.Execute("""
                INSERT INTO volumes(id, name, pool_name, type, dataset, mountpoint, view_dataset, parent_volume_id, parent_snapshot_id,
                                    metadata, quota_bytes, disk_image_path, created_at)
                VALUES ($id, $name, $pool, $type, $ds, $mp, $view, $pv, $ps, $meta, $quota, $disk, $created)
                """, null,
                ("$id", v.Id), ("$name", v.Name), ("$pool", v.Pool), ("$type", v.Type), ("$ds", v.Dataset), ("$mp", v.Mountpoint),
                ("$view", v.ViewDataset), ("$pv", v.ParentVolumeId), ("$ps", v.ParentSnapshotId),
                ("$meta", JsonSerializer.Serialize(v.Metadata)), ("$quota", v.QuotaBytes), ("$disk", v.DiskImagePath),
                ("$created", v.CreatedAt.ToString("O", CultureInfo.InvariantCulture)));
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new VmToolsException("VolumeNameInUse", FailureKind.ResourceExists,
                $"A volume named '{v.Name}' is already recorded.", e) { Target = v.Name };
        }
    }

    public void SetDiskImage(string id, string? path)
        => _db.Execute("UPDATE volumes SET disk_image_path = $p WHERE id = $id", null, ("$p", path), ("$id", id));

    public void SetMetadata(string id, IReadOnlyDictionary<string, string> metadata)
        => _db.Execute("UPDATE volumes SET metadata = $m WHERE id = $id", null, ("$m", JsonSerializer.Serialize(metadata)), ("$id", id));

    public void RemoveVolume(string id) => _db.Execute("DELETE FROM volumes WHERE id = $id", null, ("$id", id));

    public bool NameTaken(string name)
    {
        using var cmd = _db.Command("SELECT COUNT(*) FROM volumes WHERE name = $n", null, ("$n", name));
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) > 0;
    }

    public void AddHold(string pool, string snapshot, string tag)
        => _db.Execute("INSERT OR REPLACE INTO volume_holds(snapshot, tag, pool_name, placed_at) VALUES ($s, $t, $p, $at)", null,
            ("$s", snapshot), ("$t", tag), ("$p", pool), ("$at", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture)));

    public void RemoveHold(string snapshot, string tag)
        => _db.Execute("DELETE FROM volume_holds WHERE snapshot = $s AND tag = $t", null, ("$s", snapshot), ("$t", tag));

    public IReadOnlyList<(string Pool, string Snapshot, string Tag)> Holds()
    {
        using var cmd = _db.Command("SELECT pool_name, snapshot, tag FROM volume_holds");
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string, string)>();
        while (r.Read()) list.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        return list;
    }
}
