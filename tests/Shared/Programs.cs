using System.Diagnostics;

namespace VmTools.TestSupport;

/// <summary>Runs independent tools (skopeo, isoinfo, qemu-img...) that cross-check what VmTools wrote.</summary>
public static class Programs
{
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, params string[] args)
        => RunIn(null, null, file, args);

    public static (int ExitCode, string Stdout, string Stderr) RunIn(string? workingDirectory, IDictionary<string, string>? env, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static string MustRun(string file, params string[] args)
    {
        var (code, stdout, stderr) = Run(file, args);
        if (code != 0) Assert.Fail($"{file} {string.Join(' ', args)} exited {code}: {stderr}{stdout}");
        return stdout;
    }
}
