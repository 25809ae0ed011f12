using System.Diagnostics;

namespace VmTools.Tests;

/// <summary>
/// Another PowerShell process (tests/VmTools.ScriptHost, the pwsh stand-in) running one script: for
/// what only separate processes show, such as a VM outliving its controller or pulls joined across processes.
/// </summary>
public static class ScriptHostProcess
{
    /// <summary>Starts the script with its arguments; stdout and stderr are redirected, the environment adjusted by <paramref name="env"/> (null unsets).</summary>
    public static Process Start(string script, IReadOnlyDictionary<string, string?> env, params string[] args)
        => Process.Start(StartInfo(script, env, args))!;

    /// <summary>What <see cref="Start"/> starts, for a caller that wraps it (<see cref="TestSupport.WithoutProgram"/>).</summary>
    public static ProcessStartInfo StartInfo(string script, IReadOnlyDictionary<string, string?> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(DllPath());
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
        {
            if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        }

        return psi;
    }

    /// <summary>The next stdout line, or null when none came within <paramref name="timeout"/>.</summary>
    public static async Task<string?> ReadLineWithin(Process p, TimeSpan timeout)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            return await p.StandardOutput.ReadLineAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>The ScriptHost built beside this test assembly's configuration.</summary>
    private static string DllPath()
    {
        var testBin = AppContext.BaseDirectory.TrimEnd('/'); // .../tests/VmTools.Tests/bin/<Config>/<tfm>
        var tfm = Path.GetFileName(testBin);
        var config = Path.GetFileName(Path.GetDirectoryName(testBin)!);
        var repo = Path.GetDirectoryName(Path.GetDirectoryName(PowerShellHost.ModuleManifest)!)!;
        repo = Path.GetDirectoryName(repo)!;
        // Built through a ProjectReference; outside the solution it gets the default configuration, so take the newest build.
        var dll = Directory.EnumerateFiles(Path.Combine(repo, "tests", "VmTools.ScriptHost", "bin"), "VmTools.ScriptHost.dll", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == tfm)
            .OrderByDescending(f => (Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(f))) == config, File.GetLastWriteTimeUtc(f)))
            .FirstOrDefault();
        Assert.True(dll is not null, "VmTools.ScriptHost is not built: the test project builds it through a ProjectReference.");
        return dll;
    }
}
