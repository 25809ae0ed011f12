using System.Diagnostics;
using VmTools.Core.Images;
using VmTools.Core.Registry;
using VmTools.Core.State;
using static VmTools.Bench.BenchHost;

// The e2e preparation step, side by side on the same inputs in one run:
//   reference: podman pull + create + cp /qcow2/disk.qcow2 + rm (qcow2_cache_manager.sh), xorrisofs of the seed
//              directory (the Go harness's flags), qemu-img create overlay, qemu start (-daemonize);
//   VmTools:   Get-Qcow2Cache's core (cold pull into an empty state), New-CloudInitIso's writer on the same seed
//              directory, Start-FlightVm's core (overlay + qemu start).
// The guest's own boot is the same for both and is reported separately, when a kernel is given.
// Each contender starts cold: podman with empty storage, VmTools with an empty state, page cache dropped.
// Usage (root; podman, runc, docker-registry, qemu-img, qemu-system-x86, xorriso):
//   dotnet run -c Release --project bench/E2E [MiB | disk.qcow2] [rounds] [kernel initrd kernel-args ready-regex]
var source = args.Length > 0 ? args[0] : "512";
var rounds = args.Length > 1 ? int.Parse(args[1]) : 3;
var guest = args.Length > 5 ? new Guest(Path.GetFullPath(args[2]), Path.GetFullPath(args[3]), args[4], new System.Text.RegularExpressions.Regex(args[5])) : null;
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

    var disk = File.Exists(source) ? Path.GetFullPath(source) : RandomQcow2(root, int.Parse(source));
    var repo = ImageReference.Parse($"{host}/bench/e2e-base");
    var pubPaths = PathsUnder(Path.Combine(root, "publisher"));
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

    // One seed directory for both sides (what prepare_cloud_init_config.sh leaves behind).
    var seedDirectory = Path.Combine(root, "cloud-init-data");
    Directory.CreateDirectory(Path.Combine(seedDirectory, "flightctl-config", "certs"));
    File.WriteAllText(Path.Combine(seedDirectory, "user-data"), "#cloud-config\nruncmd:\n  - [ sh, -c, 'echo VMTOOLS-BENCH-READY > /dev/ttyS0' ]\n");
    File.WriteAllText(Path.Combine(seedDirectory, "meta-data"), "instance-id: bench\nlocal-hostname: bench\n");
    File.WriteAllText(Path.Combine(seedDirectory, "network-config"), "version: 2\nethernets:\n  nics:\n    match:\n      name: \"e*\"\n    dhcp4: true\n");
    File.WriteAllText(Path.Combine(seedDirectory, "flightctl-config", "config.yaml"), "enrollment-service: {}\n");
    File.WriteAllBytes(Path.Combine(seedDirectory, "flightctl-config", "certs", "client.crt"), new byte[4096]);

    var reference = new List<TimeSpan>();
    var cold = new List<TimeSpan>();
    var warm = new List<TimeSpan>();
    var refPrep = new List<TimeSpan>();
    var ourPrep = new List<TimeSpan>();
    var refBoot = new List<TimeSpan>();
    var ourBoot = new List<TimeSpan>();
    for (var round = 0; round < rounds; round++)
    {
        var storage = Path.Combine(podmanDir, "storage-" + round);
        string[] Podman(params string[] a) => new[] { "--root", storage, "--runroot", storage + "-run", "--tmpdir", storage + "-tmp", "--storage-driver", "overlay" }.Concat(a).ToArray();
        var outFile = Path.Combine(root, $"ref-{round}.qcow2");
        DropCaches();
        var sw = Stopwatch.StartNew();
        RunWith(env, "podman", Podman("pull", "--quiet", image));
        var id = RunWith(env, "podman", Podman("create", image, "/never-runs")).Trim();
        RunWith(env, "podman", Podman("cp", id + ":/qcow2/disk.qcow2", outFile));
        RunWith(env, "podman", Podman("rm", id));
        reference.Add(sw.Elapsed);
        var refIso = Path.Combine(root, $"ref-{round}.iso");
        Run("xorrisofs", "-quiet", "-output", refIso, "-volid", "cidata", "-joliet", "-rock", "-partition_cyl_align", "on", seedDirectory);
        var refOverlay = Path.Combine(root, $"ref-{round}-overlay.qcow2");
        Run("qemu-img", "create", "-q", "-f", "qcow2", "-b", outFile, "-F", "qcow2", refOverlay);
        var refLog = Path.Combine(root, $"ref-{round}.log");
        var refPid = Path.Combine(root, $"ref-{round}.pid");
        var qemu = new List<string>
        {
            "-accel", "tcg", "-cpu", "max", "-m", "1024", "-nodefaults", "-display", "none", "-serial", "file:" + refLog, "-monitor", "none",
            "-drive", $"file={refOverlay},if=virtio,format=qcow2", "-cdrom", refIso,
            "-netdev", $"user,id=n0,hostfwd=tcp:127.0.0.1:{FreePort()}-:22", "-device", "virtio-net-pci,netdev=n0", "-daemonize", "-pidfile", refPid,
        };
        if (guest is not null) qemu.AddRange(new[] { "-kernel", guest.Kernel, "-initrd", guest.Initrd, "-append", guest.KernelArgs });
        Run("qemu-system-x86_64", qemu.ToArray());
        refPrep.Add(sw.Elapsed);
        if (guest is not null) refBoot.Add(WaitForConsole(refLog, guest.Ready, TimeSpan.FromMinutes(15)));
        Kill(int.Parse(File.ReadAllText(refPid).Trim()));
        RunWith(env, "podman", Podman("system", "reset", "--force"));
        Unmount(storage);
        File.Delete(outFile);

        var paths = PathsUnder(Path.Combine(root, "puller-" + round));
        using var db = StateDb.Open(paths.EnsureCreated().DatabasePath);
        var fetcher = new Qcow2CacheFetcher(db, paths);
        DropCaches();
        sw.Restart();
        var pulled = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "base-qcow2-latest" }), null, CancellationToken.None);
        cold.Add(sw.Elapsed);
        var ourIso = Path.Combine(root, $"ours-{round}.iso");
        await VmTools.Core.CloudInit.SeedImage.WriteAsync(seedDirectory, ourIso, new VmTools.Core.CloudInit.Iso9660.IsoImageOptions(), overwrite: true, null, CancellationToken.None);
        var lifecycle = new VmTools.Core.Vms.VmLifecycle(db, paths);
        var started = await lifecycle.StartAsync(new VmTools.Core.Vms.VmStartRequest
        {
            ImagePath = pulled.Path!, Name = $"bench-{round}", MemoryMB = 1024, CloudInitPath = ourIso,
            KernelPath = guest?.Kernel, InitrdPath = guest?.Initrd, KernelArgs = guest?.KernelArgs,
        }, null, CancellationToken.None);
        ourPrep.Add(sw.Elapsed);
        if (guest is not null) ourBoot.Add(WaitForConsole(started[0].Vm.ConsoleLogPath, guest.Ready, TimeSpan.FromMinutes(15)));
        await lifecycle.StopAsync($"bench-{round}", TimeSpan.Zero, force: true, null, CancellationToken.None);
        await lifecycle.RemoveAsync($"bench-{round}", force: true, CancellationToken.None);
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
    Console.WriteLine();
    Console.WriteLine("whole preparation without the guest's own boot (base + seed ISO + overlay + qemu started):");
    Console.WriteLine($"reference: podman pull/create/cp/rm + xorrisofs + qemu-img create + qemu: {Median(refPrep).TotalSeconds,7:0.000} s  ({string.Join(", ", refPrep.Select(t => t.TotalSeconds.ToString("0.00")))})");
    Console.WriteLine($"VmTools: Get-Qcow2Cache (cold) + New-CloudInitIso + Start-FlightVm:       {Median(ourPrep).TotalSeconds,7:0.000} s  ({string.Join(", ", ourPrep.Select(t => t.TotalSeconds.ToString("0.00")))})");
    Console.WriteLine($"ratio (reference / VmTools, target >= 3): {Median(refPrep) / Median(ourPrep):0.00}x");
    Console.WriteLine(guest is null
        ? "guest boot: not measured (give a kernel, initrd, kernel args and a readiness regex)"
        : $"guest boot to '{guest.Ready}', shown separately: reference {Median(refBoot).TotalSeconds:0.0} s, VmTools {Median(ourBoot).TotalSeconds:0.0} s");
}
finally
{
    try { registry?.Kill(true); } catch (InvalidOperationException) { }
    Unmount(root);
    Directory.Delete(root, recursive: true);
}

static TimeSpan WaitForConsole(string log, System.Text.RegularExpressions.Regex ready, TimeSpan timeout)
{
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed < timeout)
    {
        if (File.Exists(log) && ready.IsMatch(File.ReadAllText(log))) return sw.Elapsed;
        Thread.Sleep(100);
    }

    throw new TimeoutException($"'{ready}' did not appear in {log} within {timeout}");
}

static void Kill(int pid)
{
    try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { }
}





// podman leaves overlay mounts behind after it exits; they must go before the folder can.
static void Unmount(string under)
{
    var prefix = under.TrimEnd('/') + "/";
    foreach (var m in File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).OrderByDescending(m => m.Length))
    {
        Run("umount", "-l", m);
    }
}



sealed record Guest(string Kernel, string Initrd, string KernelArgs, System.Text.RegularExpressions.Regex Ready);
