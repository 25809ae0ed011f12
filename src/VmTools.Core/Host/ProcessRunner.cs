using System.Diagnostics;
using System.Text;

namespace VmTools.Core.Host;

/// <summary>The real <see cref="ICommandRunner"/>: starts the program with an argv list and captures stderr into results.</summary>
public sealed class ProcessRunner : ICommandRunner
{
    public static ProcessRunner Instance { get; } = new();

    public async Task<CommandResult> RunAsync(CommandSpec command, CancellationToken cancellationToken = default)
    {
        var psi = new ProcessStartInfo(command.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = command.WorkingDirectory ?? string.Empty,
        };
        foreach (var a in command.Arguments) psi.ArgumentList.Add(a);
        if (command.Environment is not null)
        {
            foreach (var (k, v) in command.Environment)
            {
                if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
            }
        }

        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new VmToolsException("HostCommandNotFound", FailureKind.ResourceUnavailable,
                $"Cannot run '{command.FileName}': {e.Message}. Is it installed and on PATH?", e) { Target = command.FileName };
        }

        // Killing the whole tree on cancellation keeps both ends of a pipe from lingering.
        using var kill = cancellationToken.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } });

        var stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        Task<string> stdoutTask;
        if (command.ReadStdout is { } reader)
        {
            stdoutTask = ReadWith(reader, process.StandardOutput.BaseStream, cancellationToken);
        }
        else
        {
            stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        }

        Task stdinTask = Task.CompletedTask;
        if (command.WriteStdin is { } writer)
        {
            stdinTask = WriteWith(writer, process.StandardInput.BaseStream, cancellationToken);
        }
        else
        {
            process.StandardInput.Close();
        }

        try
        {
            await Task.WhenAll(stdinTask, stdoutTask, stderrTask).ConfigureAwait(false);
        }
        catch when (cancellationToken.IsCancellationRequested)
        {
            // Fall through to the cancellation below once the process is gone.
        }

        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return new CommandResult(command, process.ExitCode, await stdoutTask.ConfigureAwait(false), await stderrTask.ConfigureAwait(false));
    }

    private static async Task<string> ReadWith(Func<Stream, CancellationToken, Task> reader, Stream stdout, CancellationToken ct)
    {
        await reader(stdout, ct).ConfigureAwait(false);
        return string.Empty;
    }

    private static async Task WriteWith(Func<Stream, CancellationToken, Task> writer, Stream stdin, CancellationToken ct)
    {
        try
        {
            await writer(stdin, ct).ConfigureAwait(false);
        }
        finally
        {
            try { stdin.Close(); } catch (IOException) { }
        }
    }
}
