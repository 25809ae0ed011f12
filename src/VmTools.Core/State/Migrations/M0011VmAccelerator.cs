using Microsoft.Data.Sqlite;

namespace VmTools.Core.State.Migrations;

/// <summary>
/// The accelerator a VM runs with (Kvm or Tcg) is part of its durable record: it decides the qemu
/// argv, and a silent console is read differently under each. Records from before stay NULL.
/// </summary>
internal sealed class M0011VmAccelerator : IMigration
{
    public int Version => 11;

    public string Name => "vm-accelerator";

    public void Apply(SqliteConnection connection, SqliteTransaction transaction)
        => StateDb.Exec(connection, transaction, "ALTER TABLE vms ADD COLUMN accelerator TEXT;");
}
