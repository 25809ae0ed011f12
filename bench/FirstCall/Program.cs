using System.Diagnostics;

// Whole-process first-call cost: each case is a fresh `pwsh -NoProfile -NonInteractive -Command`,
// timed from start to exit, so it includes what a CI step pays (process start, module import,
// JIT). "import" runs only Import-Module; the other cases add one cmdlet call, and the difference
// is what that first call costs. Rounds interleave the cases so machine noise spreads evenly.
//
// Usage: dotnet run -c Release --project bench/FirstCall -- [--pwsh PATH] [--rounds N]
//        [--module NAME=PSD1 ...]   (default: R2R=out/VmTools/VmTools.psd1)
var options = Options.Parse(args);
var pwsh = PwshLocator.Find(options.Pwsh);
Console.WriteLine($"pwsh: {string.Join(' ', pwsh)}   rounds: {options.Rounds}   cores: {Environment.ProcessorCount}");

var work = Directory.CreateTempSubdirectory("vmtools-firstcall-");
try
{
    // A config directory as VM_CONFIG_DIR lays it out, carrying the 100 MB payload as the package.
    var configDir = Path.Combine(work.FullName, "vm-config");
    Directory.CreateDirectory(Path.Combine(configDir, "certs"));
    Directory.CreateDirectory(Path.Combine(configDir, "rpms"));
    File.WriteAllText(Path.Combine(configDir, "config.yaml"), "enrollment-service: {}\n");
    File.WriteAllText(Path.Combine(configDir, "certs", "client-enrollment.crt"), "CERT\n");
    File.WriteAllText(Path.Combine(configDir, "certs", "client-enrollment.key"), "KEY\n");
    File.WriteAllText(Path.Combine(configDir, "ca.pem"), "CA\n");
    using (var f = File.Create(Path.Combine(configDir, "rpms", "flightctl-agent-0.9.0-1.x86_64.rpm")))
    {
        var block = new byte[1 << 20];
        Random.Shared.NextBytes(block);
        for (var i = 0; i < 100; i++) f.Write(block);
    }

    var cases = new List<(string Label, string Psd1, string Name, string Script, Dictionary<string, string> Env)>();
    foreach (var (label, psd1) in options.Modules)
    {
        var home = Directory.CreateDirectory(Path.Combine(work.FullName, label + "-home")).FullName;
        var import = $"Import-Module '{psd1}'";
        var env = new Dictionary<string, string> { ["VMTOOLS_HOME"] = home };
        cases.Add((label, psd1, "import", import, env));
        var cloudInit = $"{import}; New-CloudInitConfig -Hostname bench -ConfigDirectory '{configDir}' | New-CloudInitIso -Path '{{seed}}' -Force | Out-Null";
        // A CI step writes its seed into a fresh workspace: a new path every run, deleted after the clock stops.
        cases.Add((label, psd1, "cloud-init", cloudInit, env));
        // The same call over the previous run's image: -Force replaces it, and the rename then frees the old
        // 100 MB inode (its cached pages and extents). That cost is the filesystem's and the same on every
        // call (`mv` over the file pays it too), so it is shown apart from the first call's.
        cases.Add((label, psd1, "cloud-init over the last seed", cloudInit.Replace("{seed}", Path.Combine(work.FullName, label + "-seed.iso")), env));
        cases.Add((label, psd1, "get-flightvm", $"{import}; Get-FlightVm | Out-Null", env));
    }

    // One unmeasured round warms the disk cache and pwsh's own startup caches; then every round runs
    // every case of every layout, so a busy moment of the machine falls on all of them alike.
    var freshSeeds = 0;
    double Timed(string script, Dictionary<string, string> env)
    {
        if (!script.Contains("{seed}")) return Run(pwsh, script, env);
        var seed = Path.Combine(work.FullName, $"fresh-seed-{freshSeeds++}.iso");
        var elapsed = Run(pwsh, script.Replace("{seed}", seed), env);
        File.Delete(seed);
        return elapsed;
    }

    foreach (var c in cases) Timed(c.Script, c.Env);
    var times = cases.ToDictionary(c => (c.Label, c.Name), _ => new List<double>());
    for (var round = 0; round < options.Rounds; round++)
        foreach (var c in cases) times[(c.Label, c.Name)].Add(Timed(c.Script, c.Env));

    foreach (var group in cases.GroupBy(c => (c.Label, c.Psd1)))
    {
        var importMedian = Median(times[(group.Key.Label, "import")]);
        var importMin = times[(group.Key.Label, "import")].Min();
        Console.WriteLine();
        Console.WriteLine($"## {group.Key.Label} ({group.Key.Psd1})");
        Console.WriteLine("| case | median (ms) | min (ms) | first call adds, medians (ms) | first call adds, minima (ms) |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var c in group)
        {
            var t = times[(c.Label, c.Name)];
            var (addsMedian, addsMin) = c.Name == "import" ? ("", "") : ($"{Median(t) - importMedian:F0}", $"{t.Min() - importMin:F0}");
            Console.WriteLine($"| {c.Name} | {Median(t):F0} | {t.Min():F0} | {addsMedian} | {addsMin} |");
        }
    }
}
finally
{
    work.Delete(recursive: true);
}

static double Run(IReadOnlyList<string> pwsh, string script, IReadOnlyDictionary<string, string> env)
{
    var psi = new ProcessStartInfo(pwsh[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in pwsh.Skip(1)) psi.ArgumentList.Add(a);
    foreach (var a in new[] { "-NoProfile", "-NonInteractive", "-Command", script + "; if (-not $?) { exit 1 }" }) psi.ArgumentList.Add(a);
    foreach (var (k, v) in env) psi.Environment[k] = v;
    var clock = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    var stderr = p.StandardError.ReadToEndAsync();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    clock.Stop();
    if (p.ExitCode != 0) throw new InvalidOperationException($"'{script}' failed ({p.ExitCode}): {stderr.Result}");
    return clock.Elapsed.TotalMilliseconds;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

internal sealed record Options(string? Pwsh, int Rounds, IReadOnlyList<(string Label, string Psd1)> Modules)
{
    public static Options Parse(string[] args)
    {
        string? pwsh = null;
        var rounds = 7;
        var modules = new List<(string, string)>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--pwsh": pwsh = args[++i]; break;
                case "--rounds": rounds = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--module":
                    var spec = args[++i];
                    var eq = spec.IndexOf('=');
                    modules.Add((spec[..eq], Path.GetFullPath(spec[(eq + 1)..])));
                    break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }

        if (modules.Count == 0) modules.Add(("R2R", Path.Combine(RepositoryRoot(), "out", "VmTools", "VmTools.psd1")));
        return new Options(pwsh, rounds, modules);
    }

    private static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "VmTools.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("run from inside the repository, or pass --module");
    }
}

/// <summary>The pwsh a user of this repository has: --pwsh, else `dotnet pwsh` (the repo's tool manifest), else pwsh on PATH.</summary>
internal static class PwshLocator
{
    public static IReadOnlyList<string> Find(string? explicitPath)
    {
        if (explicitPath is not null) return [explicitPath];
        if (Works(["dotnet", "pwsh"])) return ["dotnet", "pwsh"];
        if (Works(["pwsh"])) return ["pwsh"];
        throw new InvalidOperationException("No pwsh: run `dotnet tool restore` in the repository, put pwsh on PATH, or pass --pwsh PATH.");
    }

    private static bool Works(string[] command)
    {
        try
        {
            var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in command.Skip(1).Concat(["-NoProfile", "-Command", "exit 0"])) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
