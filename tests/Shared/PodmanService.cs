using System.Diagnostics;

namespace VmTools.TestSupport;

/// <summary>
/// A real Docker-API engine: <c>podman system service</c> on a socket of its own, with its own storage,
/// run root, containers.conf (runc, ulimits this machine allows) and registries.conf, all under one
/// folder per test process, so two test assemblies running at once never share or stop each other's
/// engine. Stopping it unmounts what podman left mounted and removes the folder; folders of crashed
/// runs (their process gone) are cleaned on the next start.
/// </summary>
public sealed class PodmanService : IDisposable
{
    private const string FolderPrefix = "vmtools-podman-";
    private readonly Process _process;
    private readonly List<string> _log = new();

    private PodmanService(IEnumerable<string> insecureRegistries)
    {
        var podman = RealComponent.RequireProgram("podman", "apt-get install podman runc");
        RealComponent.RequireProgram("runc", "apt-get install runc");
        RealComponent.RequireRoot("podman's storage and builds run as root here (rootless needs uidmap and fuse-overlayfs)");
        RemoveStaleFolders();
        Root = Path.Combine(Path.GetTempPath(), $"{FolderPrefix}{System.Environment.ProcessId}-{Guid.NewGuid():N}"[..(FolderPrefix.Length + 20)]);
        Directory.CreateDirectory(Root);
        Socket = Path.Combine(Root, "api.sock");
        ContainersConf = Path.Combine(Root, "containers.conf");
        RegistriesConf = Path.Combine(Root, "registries.conf");
        // crun (the default) fails on this host's hybrid cgroups; the default ulimits exceed what root may raise here.
        File.WriteAllText(ContainersConf, """
            [containers]
            default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]

            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            """);
        WriteRegistriesConf(insecureRegistries);
        GlobalArguments = new[] { "--root", Path.Combine(Root, "storage"), "--runroot", Path.Combine(Root, "run"), "--tmpdir", Path.Combine(Root, "tmp"), "--storage-driver", "overlay" };
        var psi = new ProcessStartInfo(podman) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var (k, v) in ServiceEnvironment) psi.Environment[k] = v;
        foreach (var a in GlobalArguments) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "system", "service", "--time=0", Uri }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        File.WriteAllText(Path.Combine(Root, "service.pid"), _process.Id.ToString());
        Api = new EngineApi(Socket);
        WaitUntilAnswering();
    }

    /// <summary>Starts a service; <paramref name="insecureRegistries"/> (host:port) may be pulled from over plain HTTP.</summary>
    public static PodmanService Start(params string[] insecureRegistries) => new(insecureRegistries);

    /// <summary>The per-process folder holding socket, configuration and storage.</summary>
    public string Root { get; }

    public string Socket { get; }

    /// <summary>The DOCKER_HOST value for this engine.</summary>
    public string Uri => "unix://" + Socket;

    public string ContainersConf { get; }

    public string RegistriesConf { get; }

    /// <summary>Global flags that point the podman CLI at this service's storage (for CLI cross-checks).</summary>
    public IReadOnlyList<string> GlobalArguments { get; }

    /// <summary>The environment the service runs with; the CLI needs the same to see the same configuration.</summary>
    public IReadOnlyDictionary<string, string> ServiceEnvironment => new Dictionary<string, string>
    {
        ["CONTAINERS_CONF"] = ContainersConf,
        ["CONTAINERS_REGISTRIES_CONF"] = RegistriesConf,
    };

    /// <summary>An independent HTTP client of the same API, to check what VmTools left behind.</summary>
    public EngineApi Api { get; }

    /// <summary>Marks more registries insecure; podman reads registries.conf again on each pull.</summary>
    public void WriteRegistriesConf(IEnumerable<string> insecureRegistries)
    {
        var text = "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n";
        foreach (var r in insecureRegistries) text += $"\n[[registry]]\nlocation = \"{r}\"\ninsecure = true\n";
        File.WriteAllText(RegistriesConf, text);
    }

    /// <summary>Runs the podman CLI against this service's storage and configuration.</summary>
    public (int ExitCode, string Stdout, string Stderr) Podman(params string[] args)
        => Programs.RunIn(null, ServiceEnvironment.ToDictionary(kv => kv.Key, kv => kv.Value), "podman", GlobalArguments.Concat(args).ToArray());

    public string Log
    {
        get { lock (_log) return string.Join('\n', _log); }
    }

    public void Dispose()
    {
        Api.Dispose();
        Stop(_process);
        CleanUp(Root);
    }

    private void WaitUntilAnswering()
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < until && !_process.HasExited)
        {
            if (Api.Ping()) return;
            Thread.Sleep(100);
        }

        var log = Log;
        Dispose();
        throw new InvalidOperationException($"podman system service did not answer on {Uri}: {log}");
    }

    private static void Stop(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                // SIGTERM lets podman shut its storage down cleanly; SIGKILL only if it hangs.
                Programs.Run("kill", "-TERM", process.Id.ToString());
                if (!process.WaitForExit(10_000)) process.Kill(entireProcessTree: true);
                process.WaitForExit(5_000);
            }
        }
        catch (InvalidOperationException) { }

        process.Dispose();
    }

    /// <summary>Unmounts everything podman mounted under <paramref name="root"/> (deepest first), then deletes it.</summary>
    private static void CleanUp(string root)
    {
        var prefix = root.TrimEnd('/') + "/";
        var mounts = File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' ')[4].Replace("\\040", " "))
            .Where(m => m == root || m.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(m => m.Length)
            .ToList();
        foreach (var m in mounts) Programs.Run("umount", "-l", m);
        try { Directory.Delete(root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void RemoveStaleFolders()
    {
        foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            var name = Path.GetFileName(dir)[FolderPrefix.Length..];
            var dash = name.IndexOf('-');
            if (dash <= 0 || !int.TryParse(name[..dash], out var pid)) continue;
            if (Directory.Exists($"/proc/{pid}")) continue;
            // The crashed run's service outlives it; stop it if the pid still names that service.
            if (int.TryParse(File.Exists(Path.Combine(dir, "service.pid")) ? File.ReadAllText(Path.Combine(dir, "service.pid")) : null, out var service)
                && File.Exists($"/proc/{service}/cmdline") && File.ReadAllText($"/proc/{service}/cmdline").Contains(dir, StringComparison.Ordinal))
            {
                Programs.Run("kill", "-KILL", service.ToString());
            }

            CleanUp(dir);
        }
    }
}
