using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace VmTools;

/// <summary>
/// Runs a cmdlet's per-item work at most <c>limit</c> at a time while the pipeline keeps feeding items, and
/// hands each item's outcome (a WriteObject or a WriteError) back to the pipeline thread as it completes:
/// <see cref="Drain"/> from ProcessRecord writes what is done without waiting, <see cref="Finish"/> from
/// EndProcessing waits for the rest. PowerShell only accepts output on the pipeline thread, hence the queue.
/// Not disposable on purpose: after Ctrl+C, items still winding down (their programs killed by the token)
/// may complete into the queue after the cmdlet has gone.
/// </summary>
internal sealed class ThrottledPipeline
{
    private readonly SemaphoreSlim _slots;
    private readonly BlockingCollection<Action> _completed = new();
    private readonly CancellationToken _cancellation;

    // One count per running item plus one while the pipeline may still start items: whoever takes it to
    // zero closes the queue, so Finish never waits on an item that was never started.
    private int _open = 1;

    public ThrottledPipeline(int limit, CancellationToken cancellation)
    {
        _slots = new SemaphoreSlim(limit, limit);
        _cancellation = cancellation;
    }

    /// <summary>Starts <paramref name="work"/> once a slot is free; the action it returns runs on the pipeline thread.</summary>
    public void Start(Func<CancellationToken, Task<Action>> work)
    {
        Interlocked.Increment(ref _open);
        _ = Task.Run(async () =>
        {
            try
            {
                await _slots.WaitAsync(_cancellation).ConfigureAwait(false);
                try { _completed.Add(await work(_cancellation).ConfigureAwait(false)); }
                finally { _slots.Release(); }
            }
            catch (OperationCanceledException) when (_cancellation.IsCancellationRequested)
            {
                // Ctrl+C: Finish reports the stop.
            }
            catch (Exception e)
            {
                // A defect, not an item's failure: rethrown on the pipeline thread with its stack.
                var captured = ExceptionDispatchInfo.Capture(e);
                _completed.Add(captured.Throw);
            }
            finally
            {
                Close();
            }
        });
    }

    /// <summary>Writes the outcomes that are ready, without waiting.</summary>
    public void Drain()
    {
        while (_completed.TryTake(out var write)) write();
    }

    /// <summary>Waits for every started item, writing each outcome as it completes. Ctrl+C throws OperationCanceledException.</summary>
    public void Finish()
    {
        Close();
        foreach (var write in _completed.GetConsumingEnumerable(_cancellation)) write();
    }

    private void Close()
    {
        if (Interlocked.Decrement(ref _open) == 0) _completed.CompleteAdding();
    }
}
