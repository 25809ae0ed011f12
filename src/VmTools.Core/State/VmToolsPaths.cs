namespace VmTools.Core.State;

/// <summary>
/// Where VmTools keeps things. <c>$VMTOOLS_HOME</c> puts everything under one folder (tests, CI);
/// otherwise the XDG base directories split durable state from re-creatable cache.
/// </summary>
public sealed record VmToolsPaths(string StateDirectory, string CacheDirectory, string RuntimeDirectory)
{
    public string DatabasePath => Path.Combine(StateDirectory, "vmtools.db");

    /// <summary>Content-addressed image store: one folder per layer digest.</summary>
    public string ImageStoreDirectory => Path.Combine(CacheDirectory, "images");

    /// <summary>Partial downloads live here until their digest checks; never visible in the store.</summary>
    public string DownloadDirectory => Path.Combine(CacheDirectory, "partial");

    public string LockDirectory => Path.Combine(RuntimeDirectory, "locks");

    public string VmDirectory => Path.Combine(StateDirectory, "vms");

    /// <summary>One folder per bridge VmTools created: its DHCP server's hosts, leases, pid and log files.</summary>
    public string NetworkDirectory => Path.Combine(StateDirectory, "net");

    public static VmToolsPaths FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var home = getEnv("VMTOOLS_HOME");
        if (!string.IsNullOrWhiteSpace(home))
        {
            var root = Path.GetFullPath(home);
            return new VmToolsPaths(Path.Combine(root, "state"), Path.Combine(root, "cache"), Path.Combine(root, "run"));
        }

        var userHome = getEnv("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string Xdg(string name, string fallback) => getEnv(name) is { Length: > 0 } v && Path.IsPathRooted(v) ? v : Path.Combine(userHome, fallback);
        var state = Path.Combine(Xdg("XDG_STATE_HOME", ".local/state"), "vmtools");
        var cache = Path.Combine(Xdg("XDG_CACHE_HOME", ".cache"), "vmtools");
        // XDG_RUNTIME_DIR is cleared at logout; locks only need to outlive the processes holding them.
        var runtime = getEnv("XDG_RUNTIME_DIR") is { Length: > 0 } r ? Path.Combine(r, "vmtools") : Path.Combine(state, "run");
        return new VmToolsPaths(state, cache, runtime);
    }

    /// <summary>Creates the folders; state (database, VM directories with their keys and consoles) and runtime are 0700, the image cache is not secret.</summary>
    public VmToolsPaths EnsureCreated()
    {
        foreach (var d in new[] { StateDirectory, RuntimeDirectory, LockDirectory, VmDirectory })
        {
            Host.PrivateFiles.CreateDirectory(d);
        }

        foreach (var d in new[] { CacheDirectory, ImageStoreDirectory, DownloadDirectory })
        {
            Directory.CreateDirectory(d);
        }

        return this;
    }
}
