namespace VmTools.Core.Host;

/// <summary>
/// Runs external programs by argv, never through a shell. The seam that lets tests script
/// what this kernel cannot do (device-mapper) while the real path stays the default.
/// </summary>
public interface ICommandRunner
{
    Task<CommandResult> RunAsync(CommandSpec command, CancellationToken cancellationToken = default);
}
