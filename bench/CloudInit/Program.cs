using System.Diagnostics;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;

// Seed ISO benchmark: VmTools' in-process writer against genisoimage -J -r (and xorrisofs) on the
// same trees, reported as ratios. Wall-clock medians; the page cache is warm for every contender.
var work = Path.Combine(Path.GetTempPath(), "vmtools-bench-cloudinit-" + Environment.ProcessId);
Directory.CreateDirectory(work);
try
{
    // A typical seed: user-data, meta-data, network-config, config, two certs, a CA, a 2 MB package.
    var typical = Path.Combine(work, "typical");
    var config = Path.Combine(work, "vm-config");
    Directory.CreateDirectory(Path.Combine(config, "certs"));
    Directory.CreateDirectory(Path.Combine(config, "rpms"));
    File.WriteAllText(Path.Combine(config, "config.yaml"), "enrollment-service: {}\n");
    File.WriteAllText(Path.Combine(config, "certs", "client.crt"), new string('c', 1500));
    File.WriteAllText(Path.Combine(config, "certs", "client.key"), new string('k', 1700));
    File.WriteAllText(Path.Combine(config, "ca.pem"), new string('a', 1200));
    var rpm = new byte[2 << 20];
    new Random(1).NextBytes(rpm);
    File.WriteAllBytes(Path.Combine(config, "rpms", "flightctl-agent.rpm"), rpm);
    var cfg = CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = config, Hostname = "bench", InstanceId = "bench" });
    NoCloudSeed.WriteDirectory(cfg, typical);

    var big = Path.Combine(work, "big");
    Directory.CreateDirectory(big);
    var payload = new byte[100 << 20];
    new Random(2).NextBytes(payload);
    File.WriteAllBytes(Path.Combine(big, "payload.bin"), payload);
    File.WriteAllText(Path.Combine(big, "user-data"), "#cloud-config\n");
    File.WriteAllText(Path.Combine(big, "meta-data"), "instance-id: bench\n");

    var iso = Path.Combine(work, "out.iso");
    double InProcess(Func<IsoContent> content) => Median(() => IsoImageWriter.WriteAsync(content(), iso, new IsoImageOptions()).GetAwaiter().GetResult());
    double Tool(string tool, params string[] args) => Median(() =>
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} exited {p.ExitCode}");
    });

    Console.WriteLine("| case | VmTools (ms) | genisoimage -J -r (ms) | ratio | xorrisofs (ms) | ratio |");
    Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
    foreach (var (name, dir, fromConfig) in new[] { ("typical seed (from config)", typical, true), ("typical seed (directory)", typical, false), ("100 MB payload", big, false) })
    {
        var ours = fromConfig ? InProcess(() => NoCloudSeed.ToIsoContent(cfg)) : InProcess(() => new IsoContent().AddTree(dir));
        var gen = Tool("genisoimage", "-quiet", "-o", iso, "-V", "cidata", "-J", "-r", dir);
        var xor = Tool("xorrisofs", "-quiet", "-o", iso, "-volid", "cidata", "-joliet", "-rock", dir);
        Console.WriteLine($"| {name} | {ours:F2} | {gen:F2} | {gen / ours:F1}x | {xor:F2} | {xor / ours:F1}x |");
    }

    Console.WriteLine("ratio = tool time / VmTools time (above 1: VmTools is faster).");
}
finally
{
    Directory.Delete(work, recursive: true);
}

static double Median(Action run, int rounds = 9)
{
    run(); // warm up: JIT, page cache
    var times = new List<double>();
    for (var i = 0; i < rounds; i++)
    {
        var sw = Stopwatch.StartNew();
        run();
        times.Add(sw.Elapsed.TotalMilliseconds);
    }

    times.Sort();
    return times[rounds / 2];
}
