namespace VmTools.TestSupport;

/// <summary>
/// Tests run on real components. When one is missing the test must say so loudly: in CI
/// (CI=true, where .ci/run installs everything and runs as root) that is a failure; on a
/// developer machine it is a skip whose reason names what is missing.
/// </summary>
public static class RealComponent
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static bool IsRoot => Environment.UserName == "root" || (OperatingSystem.IsLinux() && File.ReadAllText("/proc/self/status").Contains("\nUid:\t0\t"));

    /// <summary>Finds <paramref name="program"/> on PATH or stops the test with a clear reason.</summary>
    public static string RequireProgram(string program, string installHint)
    {
        var found = Which(program);
        if (found is null) Unavailable($"'{program}' is not installed ({installHint}).");
        return found!;
    }

    public static void RequireRoot(string why)
    {
        if (!IsRoot) Unavailable($"needs root: {why}.");
    }

    public static void Require(bool condition, string reason)
    {
        if (!condition) Unavailable(reason);
    }

    public static void Unavailable(string reason)
    {
        var message = "REAL COMPONENT UNAVAILABLE: " + reason;
        if (InCi) Assert.Fail(message + " CI must provide it (.ci/run installs and starts it).");
        Assert.Skip(message);
    }

    public static string? Which(string program)
    {
        if (program.Contains('/')) return File.Exists(program) ? program : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':').Concat(new[] { "/usr/sbin", "/sbin", "/usr/local/sbin" }))
        {
            var p = Path.Combine(dir, program);
            if (File.Exists(p)) return p;
        }

        return null;
    }
}
