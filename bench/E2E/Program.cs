using System.Diagnostics;
using System.Net.Sockets;
using VmTools.Core.Images;
using VmTools.Core.Registry;
using VmTools.Core.State;

// The "get the cached base disk" step of the e2e preparation, side by side on one qcow2 in one loopback
// registry: the reference chain (qcow2_cache_manager.sh: podman pull, podman create, podman cp
// /qcow2/disk.qcow2, podman rm) against Get-Qcow2Cache's core (cold pull into an empty state; warm hit).
// Each contender starts cold: podman with empty storage, VmTools with an empty state, page cache dropped.
// Usage: dotnet run -c Release --project bench/E2E [MiB | path/to/disk.qcow2] [rounds]   (root; podman, runc, docker-registry, qemu-img)
var source = args.Length > 0 ? args[0] : "512";
var rounds = args.Length > 1 ? int.Parse(args[1]) : 3;
var root = Directory.CreateTempSubdirectory("vmtools-bench-e2e-").FullName;
Process? registry = null;
try
{
    var port = FreePort();
    var host = $"127.0.0.1:{port}";
    var config = Path.Combine(root, "config.yml");
    File.WriteAllText(config, $"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {root}/storage\nhttp:\n  addr: {host}\n");
    registry = Start("docker-registry", "serve", config);
    Thread.Sleep(500);

    var disk = File.Exists(source) ? Path.GetFullPath(source) : RandomDisk(root, int.Parse(source));
    var repo = ImageReference.Parse($"{host}/bench/e2e-base");
    var pubPaths = Paths(Path.Combine(root, "publisher"));
    using (var pubDb = StateDb.Open(pubPaths.EnsureCreated().DatabasePath))
    {
        await new Qcow2CachePublisher(pubDb, pubPaths).PublishAsync(
            new PublishRequest(disk, repo, new[] { "base-qcow2-latest" }, new SourceRevision("bench", "clean")) { Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) },
            null, CancellationToken.None);
    }

    // podman as the reference uses it, with this host's workable runtime settings and the registry marked insecure.
    var podmanDir = Path.Combine(root, "podman");
    Directory.CreateDirectory(podmanDir);
    File.WriteAllText(Path.Combine(podmanDir, "containers.conf"), "[containers]\ndefault_ulimits = [\"nofile=16384:16384\", \"nproc=32768:32768\"]\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n");
    File.WriteAllText(Path.Combine(podmanDir, "registries.conf"), $"[[registry]]\nlocation = \"{host}\"\ninsecure = true\n");
    var env = new Dictionary<string, string>
    {
        ["CONTAINERS_CONF"] = Path.Combine(podmanDir, "containers.conf"),
        ["CONTAINERS_REGISTRIES_CONF"] = Path.Combine(podmanDir, "registries.conf"),
    };
    var image = $"{host}/bench/e2e-base:base-qcow2-latest";

    var reference = new List<TimeSpan>();
    var cold = new List<TimeSpan>();
    var warm = new List<TimeSpan>();
    for (var round = 0; round < rounds; round++)
    {
        var storage = Path.Combine(podmanDir, "storage-" + round);
        string[] Podman(params string[] a) => new[] { "--root", storage, "--runroot", storage + "-run", "--tmpdir", storage + "-tmp", "--storage-driver", "overlay" }.Concat(a).ToArray();
        var outFile = Path.Combine(root, $"ref-{round}.qcow2");
        DropCaches();
        var sw = Stopwatch.StartNew();
        Run(env, "podman", Podman("pull", "--quiet", image));
        var id = Run(env, "podman", Podman("create", image, "/never-runs")).Trim();
        Run(env, "podman", Podman("cp", id + ":/qcow2/disk.qcow2", outFile));
        Run(env, "podman", Podman("rm", id));
        reference.Add(sw.Elapsed);
        Run(env, "podman", Podman("system", "reset", "--force"));
        Unmount(storage);
        File.Delete(outFile);

        var paths = Paths(Path.Combine(root, "puller-" + round));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var fetcher = new Qcow2CacheFetcher(db, paths);
        DropCaches();
        sw.Restart();
        var pulled = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "base-qcow2-latest" }), null, CancellationToken.None);
        cold.Add(sw.Elapsed);
        sw.Restart();
        var hit = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "base-qcow2-latest" }), null, CancellationToken.None);
        warm.Add(sw.Elapsed);
        if (pulled.Status != CacheStatus.Pulled || hit.Status != CacheStatus.Hit) throw new InvalidOperationException($"unexpected {pulled.Status}/{hit.Status}");
    }

    TimeSpan Median(List<TimeSpan> l) => l.Order().ElementAt(l.Count / 2);
    Console.WriteLine();
    Console.WriteLine($"qcow2: {new FileInfo(disk).Length / (1 << 20)} MiB ({(File.Exists(source) ? source : "random data")}); loopback registry; {rounds} rounds, medians");
    Console.WriteLine($"reference: podman pull + create + cp + rm: {Median(reference).TotalSeconds,7:0.000} s  ({string.Join(", ", reference.Select(t => t.TotalSeconds.ToString("0.00")))})");
    Console.WriteLine($"VmTools cold pull (empty state):          {Median(cold).TotalSeconds,7:0.000} s  ({string.Join(", ", cold.Select(t => t.TotalSeconds.ToString("0.00")))})");
    Console.WriteLine($"VmTools warm hit:                         {Median(warm).TotalMilliseconds,7:0.0} ms");
    Console.WriteLine();
    Console.WriteLine($"ratio cold (reference / VmTools): {Median(reference) / Median(cold):0.00}x");
    Console.WriteLine($"ratio warm (reference / VmTools): {Median(reference) / Median(warm):0}x  (the reference has no warm path: it pulls and copies every run)");
}
finally
{
    try { registry?.Kill(true); } catch (InvalidOperationException) { }
    Unmount(root);
    Directory.Delete(root, recursive: true);
}

static string RandomDisk(string root, int mib)
{
    var raw = Path.Combine(root, "disk.raw");
    using (var fs = File.Create(raw))
    {
        var buf = new byte[1 << 20];
        var rng = new Random(1);
        for (var i = 0; i < mib; i++) { rng.NextBytes(buf); fs.Write(buf); }
    }

    var disk = Path.Combine(root, "disk.qcow2");
    Run(null, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, disk);
    File.Delete(raw);
    return disk;
}

static VmToolsPaths Paths(string r) => new(Path.Combine(r, "state"), Path.Combine(r, "cache"), Path.Combine(r, "run"));

static Process Start(string file, params string[] args)
{
    var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
    foreach (var a in args) psi.ArgumentList.Add(a);
    var p = Process.Start(psi)!;
    p.BeginErrorReadLine();
    p.BeginOutputReadLine();
    return p;
}

static string Run(IDictionary<string, string>? env, string file, params string[] args)
{
    var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
    foreach (var a in args) psi.ArgumentList.Add(a);
    if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
    using var p = Process.Start(psi)!;
    var stdout = p.StandardOutput.ReadToEndAsync();
    var stderr = p.StandardError.ReadToEndAsync();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
    return stdout.Result;
}

// podman leaves overlay mounts behind after it exits; they must go before the folder can.
static void Unmount(string under)
{
    var prefix = under.TrimEnd('/') + "/";
    foreach (var m in File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).OrderByDescending(m => m.Length))
    {
        Run(null, "umount", "-l", m);
    }
}

// Root only: each contender starts from the same cold page cache for the registry's blob.
static void DropCaches()
{
    try { File.WriteAllText("/proc/sys/vm/drop_caches", "3"); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
}

static int FreePort()
{
    var l = new TcpListener(System.Net.IPAddress.Loopback, 0);
    l.Start();
    var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    l.Stop();
    return port;
}
