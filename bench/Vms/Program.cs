using System.Diagnostics;
using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Vms;

// dotnet run -c Release --project bench/Vms [records=1000]
// 1. Reconcile's liveness pass over N records (one /proc scan) vs a pgrep-per-VM loop.
// 2. Start-FlightVm's own time until qemu is exec'd.
// 3. Overlay creation time against base size (should be flat).
var records = args.Length > 0 ? int.Parse(args[0]) : 1000;
var root = Path.Combine(Path.GetTempPath(), "vmtools-bench-" + Guid.NewGuid().ToString("N")[..8]);
var paths = new VmToolsPaths(Path.Combine(root, "state"), Path.Combine(root, "cache"), Path.Combine(root, "run")).EnsureCreated();
try
{
    using var db = StateDb.Open(paths.DatabasePath);
    var store = new VmStore(db, paths);
    var bootId = BootId.Current;
    db.InTransaction(tx =>
    {
        for (var i = 0; i < records; i++)
        {
            var id = VmNaming.NewId();
            var dir = Path.Combine(paths.VmDirectory, id);
            var vm = new FlightVm
            {
                Name = $"bench-{i}", Id = id, State = VmState.Running, ImagePath = "/base.qcow2", DiskMode = VmDiskMode.Overlay,
                OverlayPath = Path.Combine(dir, "overlay.qcow2"), Directory = dir, ConsoleLogPath = Path.Combine(dir, "console.log"),
                QmpSocketPath = Path.Combine(dir, "qmp.sock"), Network = VmNetworkMode.User, SshPort = 30000 + i, MacAddress = $"52:54:00:{i >> 16 & 0xff:x2}:{i >> 8 & 0xff:x2}:{i & 0xff:x2}", // distinct: random MACs collide now and then in 1000 records
                MemoryMB = 64, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
            };
            store.Insert(tx, vm);
            Directory.CreateDirectory(dir);
            // A dead pid: every VM needs the full liveness check.
            AtomicFile.WriteAllText(vm.HandlesPath, $"{{\"pid\": {4_000_000 - i}, \"process_start_time\": 1, \"boot_id\": \"{bootId}\"}}");
        }
    });
    HandleStore.ForgetCache();

    var reconciler = new Reconciler(db, paths);
    await reconciler.RunAsync(apply: false, removeOrphans: false, CancellationToken.None); // warm-up
    var sw = Stopwatch.StartNew();
    const int rounds = 5;
    for (var r = 0; r < rounds; r++) await reconciler.RunAsync(apply: false, removeOrphans: false, CancellationToken.None);
    var ours = sw.Elapsed / rounds;

    var sample = Math.Min(records, 100);
    sw.Restart();
    foreach (var vm in store.List().Take(sample))
    {
        var psi = new ProcessStartInfo("pgrep", new[] { "-f", vm.QmpSocketPath }) { RedirectStandardOutput = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
    }

    var pgrep = sw.Elapsed / sample * records;
    Console.WriteLine($"reconcile liveness over {records} records: {ours.TotalMilliseconds:0.0} ms (one /proc scan)");
    Console.WriteLine($"pgrep -f per VM ({sample} measured, scaled to {records}): {pgrep.TotalMilliseconds:0} ms");
    Console.WriteLine($"ratio: {pgrep / ours:0.0}x faster");

    // 2. Time until exec: a VM with an empty disk (no kernel needed, qemu just idles in the BIOS).
    var baseImage = Path.Combine(root, "base.qcow2");
    Run("qemu-img", "create", "-q", "-f", "qcow2", baseImage, "64M");
    var lifecycle = new VmLifecycle(db, paths);
    var times = new List<double>();
    for (var i = 0; i < 5; i++)
    {
        var results = await lifecycle.StartAsync(new VmStartRequest { ImagePath = baseImage, Name = $"exec-{i}", MemoryMB = 64, Network = VmNetworkMode.None }, null, CancellationToken.None);
        if (results[0].Error is { } e) throw e;
        times.Add(lifecycle.LastTimeToExec.TotalMilliseconds);
        await lifecycle.StopAsync($"exec-{i}", TimeSpan.Zero, force: true, null, CancellationToken.None);
    }

    times.Sort();
    Console.WriteLine($"Start-FlightVm until qemu exec: median {times[2]:0.0} ms (min {times[0]:0.0}, max {times[^1]:0.0}); includes the overlay");

    // 3. Overlay creation against base size.
    foreach (var size in new[] { "64M", "4G", "64G", "1T" })
    {
        var b = Path.Combine(root, $"base-{size}.qcow2");
        Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=off", b, size);
        var t = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var ov = Path.Combine(root, $"ov-{size}-{i}.qcow2");
            sw.Restart();
            await OverlayDisk.CreateAsync(ProcessRunner.Instance, b, ov, CancellationToken.None);
            t.Add(sw.Elapsed.TotalMilliseconds);
        }

        t.Sort();
        Console.WriteLine($"overlay over a {size} base: median {t[2]:0.0} ms");
    }
}
finally
{
    try { Directory.Delete(root, true); } catch (IOException) { }
}

static void Run(string file, params string[] args)
{
    using var p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false })!;
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{file} failed");
}
