using Microsoft.Data.Sqlite;

namespace VmTools.Core.State.Migrations;

/// <summary>The image cache index and the event log that statistics are computed from.</summary>
internal sealed class M0001ImageCache : IMigration
{
    public int Version => 1;

    public string Name => "image-cache";

    public void Apply(SqliteConnection connection, SqliteTransaction transaction)
    {
        StateDb.Exec(connection, transaction, """
            CREATE TABLE images (
                layer_digest    TEXT PRIMARY KEY,
                path            TEXT NOT NULL,
                size            INTEGER NOT NULL,
                mtime_ticks     INTEGER NOT NULL,
                disk_sha256     TEXT,
                created_at      TEXT NOT NULL,
                last_used_at    TEXT NOT NULL
            );
            CREATE TABLE image_refs (
                registry        TEXT NOT NULL,
                repository      TEXT NOT NULL,
                tag             TEXT NOT NULL,
                manifest_digest TEXT NOT NULL,
                layer_digest    TEXT NOT NULL REFERENCES images(layer_digest) ON DELETE CASCADE,
                source          TEXT NOT NULL,
                updated_at      TEXT NOT NULL,
                PRIMARY KEY (registry, repository, tag)
            );
            CREATE INDEX image_refs_manifest ON image_refs(manifest_digest);
            CREATE TABLE source_digests (
                path            TEXT NOT NULL,
                size            INTEGER NOT NULL,
                mtime_ticks     INTEGER NOT NULL,
                birth_ticks     INTEGER NOT NULL,
                layout          TEXT NOT NULL,
                layer_digest    TEXT NOT NULL,
                layer_size      INTEGER NOT NULL,
                diff_id         TEXT NOT NULL,
                PRIMARY KEY (path, layout)
            );
            CREATE TABLE events (
                id              INTEGER PRIMARY KEY AUTOINCREMENT,
                at              TEXT NOT NULL,
                kind            TEXT NOT NULL,
                reference       TEXT,
                bytes           INTEGER NOT NULL DEFAULT 0,
                duration_ms     INTEGER NOT NULL DEFAULT 0,
                detail          TEXT
            );
            CREATE INDEX events_kind ON events(kind);
            """);
    }
}
