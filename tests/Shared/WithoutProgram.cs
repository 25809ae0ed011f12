using System.Diagnostics;

namespace VmTools.TestSupport;

/// <summary>
/// A process that cannot find a program, for the paths that handle a missing dependency, without
/// uninstalling anything: the command runs in a private mount namespace (unshare --mount) where
/// HostScripts/without-program.sh covers each folder holding the program with a tmpfs that shows
/// everything else. The host's folders are never changed. Needs root and unshare (util-linux).
/// </summary>
public sealed class WithoutProgram : IDisposable
{
    // The namespace mounts a tmpfs here; outside it the folder stays empty.
    private readonly TempDirectory _stash = new("vmtools-without");

    public WithoutProgram(string program)
    {
        RealComponent.RequireRoot("a mount namespace hides a program");
        RealComponent.RequireProgram("unshare", "apt-get install util-linux");
        Program = program;
    }

    public string Program { get; }

    public static string Script => Path.Combine(AppContext.BaseDirectory, "HostScripts", "without-program.sh");

    /// <summary><paramref name="command"/> as it runs in the namespace: same argv, environment, folder and redirections.</summary>
    public ProcessStartInfo Wrap(ProcessStartInfo command)
    {
        var psi = new ProcessStartInfo("unshare")
        {
            UseShellExecute = false,
            RedirectStandardInput = command.RedirectStandardInput,
            RedirectStandardOutput = command.RedirectStandardOutput,
            RedirectStandardError = command.RedirectStandardError,
            WorkingDirectory = command.WorkingDirectory,
        };
        foreach (var a in new[] { "--mount", "--propagation", "private", "--", "sh", Script, _stash.Path, Program, "--", command.FileName }.Concat(command.ArgumentList))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Clear();
        foreach (var (k, v) in command.Environment) psi.Environment[k] = v;
        return psi;
    }

    public void Dispose() => _stash.Dispose();
}
