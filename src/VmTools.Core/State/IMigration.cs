using Microsoft.Data.Sqlite;

namespace VmTools.Core.State;

/// <summary>
/// One numbered schema step. Each area owns its migrations (images 1–9, VMs 10–19, volumes 20–29)
/// so they are found by reflection rather than listed in one shared file.
/// </summary>
public interface IMigration
{
    int Version { get; }

    string Name { get; }

    void Apply(SqliteConnection connection, SqliteTransaction transaction);
}
