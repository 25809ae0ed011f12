namespace VmTools.Core.Host;

/// <summary>What a finished program left behind: exit code and captured text.</summary>
public sealed record CommandResult(CommandSpec Command, int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Throws a <see cref="VmToolsException"/> naming the command and its stderr when the exit code is not zero.</summary>
    public CommandResult EnsureSuccess(string errorId = "HostCommandFailed")
    {
        if (!Succeeded)
        {
            var detail = StandardError.Trim();
            if (detail.Length == 0) detail = StandardOutput.Trim();
            throw new VmToolsException(errorId, FailureKind.InvalidOperation,
                $"'{Command}' exited with code {ExitCode}: {detail}") { Target = Command.FileName };
        }

        return this;
    }
}
