using System.Diagnostics;
using VmTools.Core.Host;

namespace VmTools.Bench;

/// <summary>Wraps the real runner and notes how long each zfs command took, to show where a transfer's time goes.</summary>
public sealed class TimedRunner : ICommandRunner
{
    private readonly ICommandRunner _inner;
    private readonly Stopwatch _since = Stopwatch.StartNew();

    public TimedRunner(ICommandRunner inner) => _inner = inner;

    public List<string> Log { get; } = new();

    public void Mark() { lock (Log) Log.Clear(); _since.Restart(); }

    public async Task<CommandResult> RunAsync(CommandSpec command, CancellationToken cancellationToken = default)
    {
        var start = _since.Elapsed;
        var clock = Stopwatch.StartNew();
        try
        {
            return await _inner.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (Log) Log.Add($"  at {start.TotalMilliseconds,6:0} ms {clock.Elapsed.TotalMilliseconds,7:0} ms  {command.FileName} {string.Join(' ', command.Arguments.Take(3))}");
        }
    }
}
