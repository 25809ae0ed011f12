using System.Reflection;
using Microsoft.Data.Sqlite;

namespace VmTools.Core.State;

/// <summary>
/// The one SQLite file that holds VmTools' durable records. WAL lets readers run beside a writer;
/// the busy timeout lets concurrent pwsh processes queue instead of failing; migrations run once,
/// each in its own transaction, recorded in <c>schema_migrations</c>.
/// </summary>
public sealed class StateDb : IDisposable
{
    private const int BusyTimeoutMs = 30_000;
    private static readonly IReadOnlyList<IMigration> Migrations = DiscoverMigrations();

    private StateDb(string path, SqliteConnection connection)
    {
        DatabasePath = path;
        Connection = connection;
    }

    public string DatabasePath { get; }

    public SqliteConnection Connection { get; }

    public static StateDb Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // The database names VMs, volumes and paths to their keys: 0600. SQLite gives -wal and -shm the
        // database file's mode, so creating the file first (SQLite takes an empty file as a new database) covers all three.
        Host.PrivateFiles.Precreate(path);
        foreach (var sidecar in new[] { path + "-wal", path + "-shm" })
        {
            if (File.Exists(sidecar)) Host.PrivateFiles.Restrict(sidecar);
        }

        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = BusyTimeoutMs / 1000,
        }.ToString();
        var connection = new SqliteConnection(cs);
        try
        {
            connection.Open();
            Exec(connection, null, $"PRAGMA busy_timeout={BusyTimeoutMs};");
            Exec(connection, null, "PRAGMA journal_mode=WAL;");
            Exec(connection, null, "PRAGMA synchronous=NORMAL;");
            Exec(connection, null, "PRAGMA foreign_keys=ON;");
            var db = new StateDb(path, connection);
            db.Migrate();
            return db;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new VmToolsException("StateDatabaseUnavailable", FailureKind.ResourceUnavailable,
                $"Cannot open the VmTools state database '{path}': {e.Message}", e) { Target = path };
        }
    }

    public IReadOnlyList<int> AppliedVersions()
    {
        using var cmd = Connection.CreateCommand();
        cmd.CommandText = "SELECT version FROM schema_migrations ORDER BY version";
        using var r = cmd.ExecuteReader();
        var list = new List<int>();
        while (r.Read()) list.Add(r.GetInt32(0));
        return list;
    }

    /// <summary>Runs <paramref name="work"/> in an IMMEDIATE transaction, so allocations (ports, names) serialize across processes.</summary>
    public T InTransaction<T>(Func<SqliteTransaction, T> work)
    {
        using var tx = Connection.BeginTransaction(deferred: false);
        var result = work(tx);
        tx.Commit();
        return result;
    }

    public void InTransaction(Action<SqliteTransaction> work) => InTransaction(tx => { work(tx); return 0; });

    public SqliteCommand Command(string sql, SqliteTransaction? tx = null, params (string Name, object? Value)[] parameters)
    {
        var cmd = Connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    public int Execute(string sql, SqliteTransaction? tx = null, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(sql, tx, parameters);
        return cmd.ExecuteNonQuery();
    }

    public void Dispose() => Connection.Dispose();

    private void Migrate()
    {
        Exec(Connection, null, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
        foreach (var m in Migrations)
        {
            using var tx = Connection.BeginTransaction(deferred: false);
            using (var check = Command("SELECT COUNT(*) FROM schema_migrations WHERE version = $v", tx, ("$v", m.Version)))
            {
                if (Convert.ToInt64(check.ExecuteScalar()) > 0) { tx.Commit(); continue; }
            }

            m.Apply(Connection, tx);
            using (var record = Command("INSERT INTO schema_migrations(version, name, applied_at) VALUES ($v, $n, $t)", tx,
                       ("$v", m.Version), ("$n", m.Name), ("$t", DateTimeOffset.UtcNow.ToString("O"))))
            {
                record.ExecuteNonQuery();
            }

            tx.Commit();
        }
    }

    internal static void Exec(SqliteConnection c, SqliteTransaction? tx, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }

    private static IReadOnlyList<IMigration> DiscoverMigrations()
    {
        var list = typeof(StateDb).Assembly.GetTypes()
            .Where(t => typeof(IMigration).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IMigration)Activator.CreateInstance(t)!)
            .OrderBy(m => m.Version)
            .ToList();
        var dup = list.GroupBy(m => m.Version).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidOperationException($"Two migrations claim version {dup.Key}.");
        return list;
    }
}
