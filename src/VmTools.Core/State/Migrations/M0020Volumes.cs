using Microsoft.Data.Sqlite;

namespace VmTools.Core.State.Migrations;

/// <summary>
/// Volume pools (a provider recorded once: kind, pool, vdev, working dir), volumes and snapshots
/// (a snapshot is a volume row whose dataset names a zfs snapshot), and holds placed by sends so
/// an interrupted send can be cleaned up on the next open.
/// </summary>
internal sealed class M0020Volumes : IMigration
{
    public int Version => 20;

    public string Name => "volumes";

    public void Apply(SqliteConnection connection, SqliteTransaction transaction)
    {
        StateDb.Exec(connection, transaction, """
            CREATE TABLE volume_pools (
                name            TEXT PRIMARY KEY,
                kind            TEXT NOT NULL,
                pool            TEXT NOT NULL UNIQUE,
                vdev_path       TEXT NOT NULL,
                vdev_size       INTEGER NOT NULL,
                working_dir     TEXT NOT NULL,
                created_at      TEXT NOT NULL
            );
            CREATE TABLE volumes (
                id              TEXT PRIMARY KEY,
                name            TEXT UNIQUE,
                pool_name       TEXT NOT NULL REFERENCES volume_pools(name),
                type            TEXT NOT NULL,
                dataset         TEXT NOT NULL UNIQUE,
                mountpoint      TEXT NOT NULL,
                view_dataset    TEXT,
                parent_volume_id TEXT,
                parent_snapshot_id TEXT,
                metadata        TEXT NOT NULL DEFAULT '{}',
                quota_bytes     INTEGER,
                disk_image_path TEXT,
                created_at      TEXT NOT NULL
            );
            CREATE INDEX volumes_parent ON volumes(parent_volume_id);
            CREATE TABLE volume_holds (
                snapshot        TEXT NOT NULL,
                tag             TEXT NOT NULL,
                pool_name       TEXT NOT NULL,
                placed_at       TEXT NOT NULL,
                PRIMARY KEY (snapshot, tag)
            );
            """);
    }
}
