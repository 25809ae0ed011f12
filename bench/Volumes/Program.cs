// Send/receive of a 1 GiB dataset: VmTools' VolumeTransfer (zfs send spliced into zfs receive, with
// hold, progress and cancellation) against the shell pipeline users would write,
// `zfs send SNAP | zfs receive -F DST`; then the same snapshot sent to a file against `zfs send > FILE`.
// Both on the same zfs-fuse pool, alternating, best of N.
// Run as root with zfs-fuse running: dotnet run -c Release --project bench/Volumes [-- SIZE_MIB ROUNDS]
using System.Diagnostics;
using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Volumes;
using VmTools.Bench;

var sizeMiB = args.Length > 0 ? int.Parse(args[0]) : 1024;
var rounds = args.Length > 1 ? int.Parse(args[1]) : 3;
var root = Path.Combine(Path.GetTempPath(), "vmtools-bench-" + Guid.NewGuid().ToString("N")[..8]);
var poolName = "vmtb" + Guid.NewGuid().ToString("N")[..8];
Directory.CreateDirectory(root);
try
{
    using var db = StateDb.Open(Path.Combine(root, "state.db"));
    // VMTOOLS_BENCH_TRACE=1 prints each zfs command of VmTools' transfers with its start and duration.
    var trace = Environment.GetEnvironmentVariable("VMTOOLS_BENCH_TRACE") == "1";
    var runner = new TimedRunner(ProcessRunner.Instance);
    var store = await VolumeStore.OpenAsync(db, runner);
    await store.InitializePoolAsync(new VolumePool
    {
        Name = VolumePool.DefaultName, PoolName = poolName, VdevPath = Path.Combine(root, "bench.vdev"),
        VdevSizeBytes = (long)sizeMiB * 8 << 20, WorkingDirectory = Path.Combine(root, "zfs"),
    });
    var source = await store.CreateVolumeAsync(new VolumeRequest());
    var chunk = new byte[1 << 20];
    await using (var f = File.Create(Path.Combine(source.Mountpoint, "payload")))
    {
        for (var i = 0; i < sizeMiB; i++) { Random.Shared.NextBytes(chunk); await f.WriteAsync(chunk); }
    }

    var snap = await store.CreateSnapshotAsync(source.Id);
    var transfer = new VolumeTransfer(store);
    var ours = new List<double>();
    var shell = new List<double>();
    for (var round = 0; round < rounds; round++)
    {
        // Alternate which side goes first so neither always gets the warmer cache.
        if (round % 2 == 0) { ours.Add(await Ours()); shell.Add(await Shell(round)); }
        else { shell.Add(await Shell(round)); ours.Add(await Ours()); }
        Console.WriteLine($"round {round + 1}: VmTools {ours[^1]:0.00} s, zfs send | zfs receive {shell[^1]:0.00} s");
    }

    async Task<double> Ours()
    {
        var target = await store.CreateVolumeAsync(new VolumeRequest());
        runner.Mark();
        var sw = Stopwatch.StartNew();
        await transfer.TransferAsync(snap.Id, target.Id);
        var t = sw.Elapsed.TotalSeconds;
        if (trace) Console.WriteLine("VmTools transfer, command by command:\n" + string.Join('\n', runner.Log));
        await store.RemoveAsync(target.Id, recurse: true);
        return t;
    }

    async Task<double> Shell(int round)
    {
        var dst = $"{poolName}/data/shell{round}";
        var sw = Stopwatch.StartNew();
        var p = Process.Start(new ProcessStartInfo("sh", new[] { "-c", $"zfs send {snap.Dataset} | zfs receive -u -F {dst}" }))!;
        await p.WaitForExitAsync();
        var t = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0) throw new InvalidOperationException("shell pipeline failed");
        Process.Start("zfs", new[] { "destroy", "-r", dst })!.WaitForExit();
        return t;
    }

    double Mbps(double s) => sizeMiB / s;
    static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
    Console.WriteLine($"{sizeMiB} MiB best of {rounds}: VmTools {Mbps(ours.Min()):0.0} MiB/s, shell pipeline {Mbps(shell.Min()):0.0} MiB/s, " +
                      $"ratio (VmTools throughput / shell) {shell.Min() / ours.Min():0.00}x; medians {Median(ours):0.00} s / {Median(shell):0.00} s, ratio {Median(shell) / Median(ours):0.00}x");

    // The same snapshot sent to a stream file (Send-VmVolumeSnapshot -Path) against `zfs send SNAP > FILE`.
    var ourFile = new List<double>();
    var shellFile = new List<double>();
    var streamFile = Path.Combine(root, "stream.zfs");
    for (var round = 0; round < rounds; round++)
    {
        if (round % 2 == 0) { ourFile.Add(await OursToFile()); shellFile.Add(await ShellToFile()); }
        else { shellFile.Add(await ShellToFile()); ourFile.Add(await OursToFile()); }
        Console.WriteLine($"file round {round + 1}: VmTools {ourFile[^1]:0.00} s, zfs send > file {shellFile[^1]:0.00} s");
    }

    async Task<double> OursToFile()
    {
        File.Delete(streamFile);
        runner.Mark();
        var sw = Stopwatch.StartNew();
        await transfer.SendToFileAsync(snap.Id, null, streamFile, overwrite: false);
        var t = sw.Elapsed.TotalSeconds;
        if (trace) Console.WriteLine($"VmTools send to a file ({t:0.00} s), command by command:\n" + string.Join('\n', runner.Log));
        return t;
    }

    async Task<double> ShellToFile()
    {
        File.Delete(streamFile);
        var sw = Stopwatch.StartNew();
        // fsync as SendToFileAsync does, so both pay for reaching the disk.
        var p = Process.Start(new ProcessStartInfo("sh", new[] { "-c", $"zfs send {snap.Dataset} > {streamFile} && sync {streamFile}" }))!;
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException("zfs send > file failed");
        return sw.Elapsed.TotalSeconds;
    }

    Console.WriteLine($"{sizeMiB} MiB to a file, best of {rounds}: VmTools {Mbps(ourFile.Min()):0.0} MiB/s, zfs send > file {Mbps(shellFile.Min()):0.0} MiB/s, " +
                      $"ratio {shellFile.Min() / ourFile.Min():0.00}x; medians ratio {Median(shellFile) / Median(ourFile):0.00}x");
}
finally
{
    var names = Process.Start(new ProcessStartInfo("zfs", new[] { "list", "-H", "-o", "name", "-r", poolName }) { RedirectStandardOutput = true })!;
    var list = names.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).OrderByDescending(n => n.Count(c => c == '/'));
    foreach (var n in list) Process.Start("zfs", new[] { "unmount", n })!.WaitForExit();
    Process.Start("zpool", new[] { "destroy", "-f", poolName })!.WaitForExit();
    Directory.Delete(root, recursive: true);
}
