using Microsoft.Data.Sqlite;

namespace VmTools.Core.State.Migrations;

/// <summary>
/// Bridges VmTools created (and so may give a DHCP server and delete): each with the /24 chosen for
/// it and its gateway (.1). A bridge not listed here is the user's and is never taken over. A tap VM
/// on a listed bridge reserves its address in its own record, in the allocation transaction: the
/// unique (bridge, address) index is the backstop against two processes handing out the same one.
/// </summary>
internal sealed class M0012VmBridges : IMigration
{
    public int Version => 12;

    public string Name => "vm-bridges";

    public void Apply(SqliteConnection connection, SqliteTransaction transaction)
    {
        StateDb.Exec(connection, transaction, """
            CREATE TABLE vm_bridges (
                name            TEXT PRIMARY KEY,
                subnet          TEXT NOT NULL UNIQUE,
                gateway         TEXT NOT NULL,
                created_at      TEXT NOT NULL
            );
            ALTER TABLE vms ADD COLUMN ip_address TEXT;
            CREATE UNIQUE INDEX vms_bridge_ip ON vms(bridge_name, ip_address);
            """);
    }
}
