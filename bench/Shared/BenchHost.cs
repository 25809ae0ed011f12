using System.Diagnostics;
using System.Net.Sockets;
using VmTools.Core.State;

namespace VmTools.Bench;

/// <summary>What the benchmarks share: starting and running the contenders, cold caches, free ports, test disks.</summary>
public static class BenchHost
{
    public static VmToolsPaths PathsUnder(string root) => new(Path.Combine(root, "state"), Path.Combine(root, "cache"), Path.Combine(root, "run"));

    /// <summary>Starts a long-running program (a registry), its output drained so it never blocks.</summary>
    public static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    public static string Run(string file, params string[] args) => RunWith(null, file, args);

    /// <summary>Runs a contender to completion; a failure stops the benchmark with its stderr.</summary>
    public static string RunWith(IDictionary<string, string>? env, string file, params string[] args)
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

    /// <summary>Root only: each contender starts from the same cold page cache.</summary>
    public static void DropCaches()
    {
        try { File.WriteAllText("/proc/sys/vm/drop_caches", "3"); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public static int FreePort()
    {
        var l = new TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A qcow2 of seeded random data (incompressible, every byte matters), made by qemu-img.</summary>
    public static string RandomQcow2(string root, int mib)
    {
        var raw = Path.Combine(root, "disk.raw");
        using (var fs = File.Create(raw))
        {
            var buf = new byte[1 << 20];
            var rng = new Random(1);
            for (var i = 0; i < mib; i++) { rng.NextBytes(buf); fs.Write(buf); }
        }

        var disk = Path.Combine(root, "disk.qcow2");
        Run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, disk);
        File.Delete(raw);
        return disk;
    }
}
