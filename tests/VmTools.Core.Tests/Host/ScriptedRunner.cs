using VmTools.Core.Host;

namespace VmTools.Core.Tests.Host;

/// <summary>
/// A runner that answers from a script instead of the OS, for paths this kernel cannot take
/// (device-mapper). It records every argv so tests assert the exact commands and the rollback order.
/// Test-only: it lives here, not in the shipped core, so no host can be handed a runner that runs nothing.
/// </summary>
public sealed class ScriptedRunner : ICommandRunner
{
    private readonly List<Func<CommandSpec, CommandResult?>> _rules = new();
    private readonly List<CommandSpec> _calls = new();
    private readonly object _gate = new();

    public IReadOnlyList<CommandSpec> Calls { get { lock (_gate) return _calls.ToArray(); } }

    /// <summary>Adds a rule; the first rule returning a result answers the call.</summary>
    public ScriptedRunner On(Func<CommandSpec, bool> match, Func<CommandSpec, CommandResult> answer)
    {
        _rules.Add(c => match(c) ? answer(c) : null);
        return this;
    }

    public ScriptedRunner On(string fileName, int exitCode, string stdout = "", string stderr = "")
        => On(c => c.FileName == fileName, c => new CommandResult(c, exitCode, stdout, stderr));

    public Task<CommandResult> RunAsync(CommandSpec command, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) _calls.Add(command);
        foreach (var rule in _rules)
        {
            if (rule(command) is { } result) return Task.FromResult(result);
        }

        throw new InvalidOperationException($"ScriptedRunner has no rule for '{command}'.");
    }
}
