using System.Diagnostics;
using System.Management.Automation;
using VmTools.Core;

namespace VmTools;

/// <summary>
/// Handed to core work by <see cref="VmToolsCmdlet.RunCore{T}"/>: cancellation plus sinks for
/// progress and verbose text that post back to the pipeline thread.
/// </summary>
public sealed class CoreContext : IProgress<TransferProgress>
{
    private readonly VmToolsCmdlet _cmdlet;
    private readonly Stopwatch _sinceLastProgress = Stopwatch.StartNew();
    private readonly int _activityId = Random.Shared.Next(1, int.MaxValue);

    internal CoreContext(VmToolsCmdlet cmdlet, CancellationToken cancellation)
    {
        _cmdlet = cmdlet;
        Cancellation = cancellation;
    }

    public CancellationToken Cancellation { get; }

    public Action<string> Verbose => message => _cmdlet.Post(() => _cmdlet.WriteVerbose(message));

    /// <summary>Writes an object to the pipeline as the core produces it (streaming output, not one list at the end).</summary>
    public Action<object> Output => item => _cmdlet.Post(() => _cmdlet.WriteObject(item));

    public Action<string> Warning => message => _cmdlet.Post(() => _cmdlet.WriteWarning(message));

    public void Report(TransferProgress value)
    {
        var done = value.BytesTotal is { } total && value.BytesDone >= total;
        // Progress rendering is expensive in a console host; a few updates a second are enough.
        lock (_sinceLastProgress)
        {
            if (!done && _sinceLastProgress.ElapsedMilliseconds < 200) return;
            _sinceLastProgress.Restart();
        }

        var record = new ProgressRecord(_activityId, value.Activity, $"{value.Item}: {Bytes(value.BytesDone)}{(value.BytesTotal is { } t ? " of " + Bytes(t) : string.Empty)} at {Bytes((long)value.BytesPerSecond)}/s")
        {
            PercentComplete = value.PercentComplete ?? -1,
            RecordType = done ? ProgressRecordType.Completed : ProgressRecordType.Processing,
        };
        _cmdlet.Post(() => _cmdlet.WriteProgress(record));
    }

    internal static string Bytes(long n) => n switch
    {
        >= 1L << 30 => $"{n / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{n / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{n / (double)(1L << 10):0.0} KiB",
        _ => $"{n} B",
    };
}
