// Replication of a 1 GiB dataset to another "host" over ssh: VmTools' VolumeReplicator (the code
// Send-VmVolumeSnapshot -Destination runs: remote listing by ssh, hold, zfs send spliced into ssh,
// check of what arrived) against the shell pipeline users would write,
// `zfs send SNAP | ssh host zfs receive -u DST`, with the same ssh options. The other host is an sshd on
// 127.0.0.1 (own host key, own authorized key) in front of a second zfs-fuse pool. Alternating, best of N.
// Run as root with zfs-fuse running: dotnet run -c Release --project bench/Replication [-- SIZE_MIB ROUNDS]
using System.Diagnostics;
using System.Net.Sockets;
using VmTools.Bench;
using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Volumes;
using VmTools.Core.Volumes.Replication;

var sizeMiB = args.Length > 0 ? int.Parse(args[0]) : 1024;
var rounds = args.Length > 1 ? int.Parse(args[1]) : 3;
var root = Path.Combine(Path.GetTempPath(), "vmtools-bench-repl-" + Guid.NewGuid().ToString("N")[..8]);
var poolName = "vmtb" + Guid.NewGuid().ToString("N")[..8];
var replicaPool = "vmtb" + Guid.NewGuid().ToString("N")[..8];
Directory.CreateDirectory(root);
Process? sshd = null;
try
{
    // The other host: sshd on loopback with a fresh host key, a client key it accepts, and a known_hosts for it.
    var port = BenchHost.FreePort();
    var hostKey = Path.Combine(root, "host_ed25519");
    var clientKey = Path.Combine(root, "id_ed25519");
    var knownHosts = Path.Combine(root, "known_hosts");
    BenchHost.Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey);
    BenchHost.Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", clientKey);
    File.Copy(clientKey + ".pub", Path.Combine(root, "authorized_keys"));
    File.WriteAllText(knownHosts, $"[127.0.0.1]:{port} {string.Join(' ', File.ReadAllText(hostKey + ".pub").Split(' ')[..2])}\n");
    File.WriteAllText(Path.Combine(root, "sshd_config"), string.Join('\n', $"Port {port}", "ListenAddress 127.0.0.1", $"HostKey {hostKey}",
        $"PidFile {Path.Combine(root, "sshd.pid")}", $"AuthorizedKeysFile {Path.Combine(root, "authorized_keys")}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "LogLevel ERROR",
        "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", string.Empty));
    Directory.CreateDirectory("/run/sshd");
    sshd = BenchHost.Start("/usr/sbin/sshd", "-f", Path.Combine(root, "sshd_config"), "-D", "-e");
    for (var i = 0; ; i++)
    {
        try { using var probe = new TcpClient(); probe.Connect("127.0.0.1", port); break; }
        catch (SocketException) when (i < 100) { Thread.Sleep(100); }
    }

    using var db = StateDb.Open(Path.Combine(root, "state.db"));
    var store = await VolumeStore.OpenAsync(db, ProcessRunner.Instance);
    await store.InitializePoolAsync(new VolumePool
    {
        Name = VolumePool.DefaultName, PoolName = poolName, VdevPath = Path.Combine(root, "bench.vdev"),
        VdevSizeBytes = (long)sizeMiB * 4 << 20, WorkingDirectory = Path.Combine(root, "zfs"),
    });
    var replicaVdev = Path.Combine(root, "replica.vdev");
    using (var f = File.Create(replicaVdev)) f.SetLength((long)sizeMiB * 4 << 20);
    BenchHost.Run("zpool", "create", "-m", Path.Combine(root, "replica-mnt"), replicaPool, replicaVdev);

    var source = await store.CreateVolumeAsync(new VolumeRequest());
    var chunk = new byte[1 << 20];
    await using (var f = File.Create(Path.Combine(source.Mountpoint, "payload")))
    {
        for (var i = 0; i < sizeMiB; i++) { Random.Shared.NextBytes(chunk); await f.WriteAsync(chunk); }
    }

    var snap = await store.CreateSnapshotAsync(source.Id);
    var replicator = new VolumeReplicator(store, ProcessRunner.Instance);
    var options = new SshOptions { IdentityFile = clientKey, KnownHostsFile = knownHosts };
    var ours = new List<double>();
    var shell = new List<double>();
    for (var round = 0; round < rounds; round++)
    {
        // Alternate which side goes first so neither always gets the warmer cache.
        if (round % 2 == 0) { ours.Add(await Ours(round)); shell.Add(await Shell(round)); }
        else { shell.Add(await Shell(round)); ours.Add(await Ours(round)); }
        Console.WriteLine($"round {round + 1}: VmTools {ours[^1]:0.00} s, zfs send | ssh zfs receive {shell[^1]:0.00} s");
    }

    async Task<double> Ours(int round)
    {
        var dst = $"{replicaPool}/ours{round}";
        var remote = replicator.Connect(ReplicaDestination.Parse($"ssh://root@127.0.0.1:{port}/{dst}"), options);
        var sw = Stopwatch.StartNew();
        var result = await replicator.SendAsync(snap.Id, remote, force: false);
        var t = sw.Elapsed.TotalSeconds;
        if (result.Incremental) throw new InvalidOperationException("expected a full stream");
        BenchHost.Run("zfs", "destroy", "-r", dst);
        return t;
    }

    async Task<double> Shell(int round)
    {
        var dst = $"{replicaPool}/shell{round}";
        var ssh = $"ssh -p {port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={knownHosts} -i {clientKey} -o IdentitiesOnly=yes root@127.0.0.1";
        var sw = Stopwatch.StartNew();
        var p = Process.Start(new ProcessStartInfo("sh", new[] { "-c", $"zfs send {snap.Dataset} | {ssh} zfs receive -u {dst}" }))!;
        await p.WaitForExitAsync();
        var t = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0) throw new InvalidOperationException("shell pipeline failed");
        BenchHost.Run("zfs", "destroy", "-r", dst);
        return t;
    }

    double Mbps(double s) => sizeMiB / s;
    static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
    Console.WriteLine($"{sizeMiB} MiB over ssh, best of {rounds}: VmTools {Mbps(ours.Min()):0.0} MiB/s, shell pipeline {Mbps(shell.Min()):0.0} MiB/s, " +
                      $"ratio (VmTools throughput / shell) {shell.Min() / ours.Min():0.00}x; medians {Median(ours):0.00} s / {Median(shell):0.00} s, ratio {Median(shell) / Median(ours):0.00}x");
}
finally
{
    if (sshd is not null) { try { sshd.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } sshd.WaitForExit(); }
    foreach (var pool in new[] { replicaPool, poolName })
    {
        var names = Process.Start(new ProcessStartInfo("zfs", new[] { "list", "-H", "-o", "name", "-r", pool }) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var list = names.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).OrderByDescending(n => n.Count(c => c == '/'));
        foreach (var n in list) Process.Start("zfs", new[] { "unmount", n })!.WaitForExit();
        Process.Start("zpool", new[] { "destroy", "-f", pool })!.WaitForExit();
    }

    Directory.Delete(root, recursive: true);
}
