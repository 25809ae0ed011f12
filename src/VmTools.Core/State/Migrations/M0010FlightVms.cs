using Microsoft.Data.Sqlite;

namespace VmTools.Core.State.Migrations;

/// <summary>
/// Durable VM records. UNIQUE constraints make allocations (name, SSH port, MAC, tap) collision-free
/// across processes: they are taken inside IMMEDIATE transactions and the constraint is the backstop.
/// No column holds a PID, loop device or dm device: those are transient handles.
/// </summary>
internal sealed class M0010FlightVms : IMigration
{
    public int Version => 10;

    public string Name => "flight-vms";

    public void Apply(SqliteConnection connection, SqliteTransaction transaction)
    {
        StateDb.Exec(connection, transaction, """
            CREATE TABLE vms (
                id              TEXT PRIMARY KEY,
                name            TEXT NOT NULL UNIQUE,
                state           TEXT NOT NULL,
                image_path      TEXT NOT NULL,
                disk_mode       TEXT NOT NULL,
                overlay_path    TEXT NOT NULL,
                directory       TEXT NOT NULL UNIQUE,
                console_log     TEXT NOT NULL,
                qmp_socket      TEXT NOT NULL UNIQUE,
                network         TEXT NOT NULL,
                ssh_port        INTEGER UNIQUE,
                mac_address     TEXT NOT NULL UNIQUE,
                tap_name        TEXT UNIQUE,
                bridge_name     TEXT,
                memory_mb       INTEGER NOT NULL,
                cpu_count       INTEGER NOT NULL,
                kernel_path     TEXT,
                initrd_path     TEXT,
                kernel_args     TEXT,
                cloud_init_path TEXT,
                volume_paths    TEXT NOT NULL DEFAULT '[]',
                created_at      TEXT NOT NULL,
                updated_at      TEXT NOT NULL,
                last_error      TEXT
            );
            CREATE INDEX vms_state ON vms(state);
            """);
    }
}
