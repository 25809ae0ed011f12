using System.Runtime.InteropServices;

namespace VmTools.TestSupport;

/// <summary>
/// The one zfs-fuse daemon the machine can run, shared by every ZFS test class in both test
/// assemblies (which may run at the same time). A cross-process lock file guards start and stop;
/// a users file counts the test processes using it. The first user starts the daemon (unless one
/// is already running, which is then never stopped), the last user that started it stops it.
/// </summary>
public sealed class ZfsFuseDaemon : IAsyncLifetime
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "vmtools-zfs-fuse");
    private static readonly string LockPath = Path.Combine(Root, "lock");
    private static readonly string UsersPath = Path.Combine(Root, "users");
    private static readonly string OwnedPath = Path.Combine(Root, "owned-pid");
    private static readonly string PidPath = Path.Combine(Root, "zfs-fuse.pid");

    /// <summary>Every pool a test creates starts with this, so a crashed run's leftovers can be recognised.</summary>
    public const string PoolPrefix = "vmtt";

    private bool _registered;

    /// <summary>Why ZFS tests cannot run here, or null when the daemon answers.</summary>
    public string? UnavailableReason { get; private set; }

    public ValueTask InitializeAsync()
    {
        if (!RealComponent.IsRoot) { UnavailableReason = "needs root: zfs-fuse mounts filesystems"; return ValueTask.CompletedTask; }
        if (RealComponent.Which("zfs-fuse") is null || RealComponent.Which("zpool") is null)
        {
            UnavailableReason = "'zfs-fuse' is not installed (apt-get install zfs-fuse)";
            return ValueTask.CompletedTask;
        }

        Directory.CreateDirectory(Root);
        using (Lock())
        {
            var users = LiveUsers();
            // A daemon that runs but does not answer (starting, shutting down, or slow on a loaded host) is
            // waited for, never replaced: a second one cannot take its socket, and its pidfile must stay.
            if (!Answers() && !WaitUntil(() => Answers() || !DaemonRunning(), TimeSpan.FromSeconds(60)) && DaemonRunning())
            {
                UnavailableReason = "a zfs-fuse daemon runs but 'zpool list' has not answered for 60 s";
                return ValueTask.CompletedTask;
            }

            if (!Answers())
            {
                File.Delete(PidPath); // a stale pidfile makes zfs-fuse exit 1 silently
                var (code, _, err) = Programs.Run("zfs-fuse", "--no-kstat-mount", "--pidfile", PidPath);
                if (code != 0) { UnavailableReason = $"zfs-fuse failed to start ({code}): {err}"; return ValueTask.CompletedTask; }
                if (!WaitUntil(Answers, TimeSpan.FromSeconds(15)))
                {
                    UnavailableReason = "zfs-fuse started but 'zpool list' never answered";
                    return ValueTask.CompletedTask;
                }

                File.WriteAllText(OwnedPath, File.Exists(PidPath) ? File.ReadAllText(PidPath).Trim() : string.Empty);
                if (users.Count == 0) DestroyLeftoverPools();
            }

            users.Add(Environment.ProcessId);
            File.WriteAllLines(UsersPath, users.Select(u => u.ToString()));
            _registered = true;
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        if (!_registered) return ValueTask.CompletedTask;
        using (Lock())
        {
            var users = LiveUsers();
            users.Remove(Environment.ProcessId);
            File.WriteAllLines(UsersPath, users.Select(u => u.ToString()));
            if (users.Count == 0 && File.Exists(OwnedPath))
            {
                if (int.TryParse(File.ReadAllText(OwnedPath).Trim(), out var pid) && IsZfsFuse(pid))
                {
                    _ = Kill(pid, 15);
                    WaitUntil(() => !IsZfsFuse(pid), TimeSpan.FromSeconds(30));
                }

                File.Delete(OwnedPath);
            }
        }

        _registered = false;
        return ValueTask.CompletedTask;
    }

    /// <summary>Stops the test with a loud reason when the daemon is not usable.</summary>
    public void Require()
    {
        if (UnavailableReason is { } reason) RealComponent.Unavailable(reason);
    }

    /// <summary>A pool name no other test (in this or another process) uses.</summary>
    public static string NewPoolName() => PoolPrefix + Guid.NewGuid().ToString("N")[..10];

    /// <summary>
    /// Destroys a test pool whether it is imported, exported or faulted: unmounts its datasets
    /// deepest first (zfs-fuse calls a mounted pool busy), then destroys it.
    /// </summary>
    public static void DestroyPool(string pool)
    {
        if (Programs.Run("zpool", "list", "-H", "-o", "name", pool).ExitCode != 0) return;
        if (Programs.Run("zpool", "destroy", "-f", pool).ExitCode == 0) return;
        var (_, names, _) = Programs.Run("zfs", "list", "-H", "-o", "name", "-r", pool);
        foreach (var ds in names.Split('\n', StringSplitOptions.RemoveEmptyEntries).OrderByDescending(n => n.Count(c => c == '/')))
        {
            Programs.Run("zfs", "unmount", "-f", ds.Trim());
        }

        for (var i = 0; i < 5; i++)
        {
            if (Programs.Run("zpool", "destroy", "-f", pool).ExitCode == 0) return;
            Thread.Sleep(500);
        }
    }

    /// <summary>Unmounts and destroys one dataset behind VmTools' back, retrying while zfs-fuse calls it busy.</summary>
    public static void DestroyDataset(string dataset)
    {
        var last = string.Empty;
        for (var i = 0; i < 10; i++)
        {
            Programs.Run("zfs", "unmount", dataset);
            var (code, _, err) = Programs.Run("zfs", "destroy", dataset);
            if (code == 0) return;
            last = err;
            Thread.Sleep(300);
        }

        Assert.Fail($"zfs destroy {dataset} kept failing: {last}");
    }

    private static bool Answers() => Programs.Run("zpool", "list").ExitCode == 0;

    /// <summary>A daemon this fixture started found pools from an earlier crashed run in zpool.cache: they belong to nobody.</summary>
    private static void DestroyLeftoverPools()
    {
        var (_, names, _) = Programs.Run("zpool", "list", "-H", "-o", "name");
        foreach (var name in names.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (name.StartsWith(PoolPrefix, StringComparison.Ordinal)) DestroyPool(name);
        }
    }

    private static bool DaemonRunning()
        => Directory.EnumerateDirectories("/proc").Any(d => int.TryParse(Path.GetFileName(d), out var p) && IsZfsFuse(p));

    private static bool IsZfsFuse(int pid)
    {
        // /proc/<pid>/stat is "pid (comm) state ...": a zombie (Z) left for its parent to reap is no daemon.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && stat.Contains("(zfs-fuse)", StringComparison.Ordinal) && stat.Length > close + 2 && stat[close + 2] != 'Z';
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static List<int> LiveUsers()
    {
        if (!File.Exists(UsersPath)) return new List<int>();
        return File.ReadAllLines(UsersPath)
            .Select(l => int.TryParse(l.Trim(), out var p) ? p : 0)
            .Where(p => p > 0 && Directory.Exists($"/proc/{p}"))
            .Distinct()
            .ToList();
    }

    private static FileStream Lock()
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive flock on Linux, released when the process dies.
                return new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(100);
            }
        }
    }

    private static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(100);
        }

        return true;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}

/// <summary>Every class that touches zfs joins this collection: they share the daemon and run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class ZfsCollection : ICollectionFixture<ZfsFuseDaemon>
{
    public const string Name = "zfs-fuse";
}
