using System.Management.Automation;
using System.Threading.Channels;
using VmTools.Core;
using VmTools.Core.State;

namespace VmTools;

/// <summary>
/// What every VmTools cmdlet shares: cancellation wired to Ctrl+C, core failures turned into
/// ErrorRecords with stable ErrorIds, and async core work run off the pipeline thread while
/// progress and verbose messages are written back on it (PowerShell only accepts them there).
/// </summary>
public abstract class VmToolsCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();
    private ChannelWriter<Action>? _pipelineQueue;
    private int _coreRunsHereOnThread;

    protected CancellationToken Cancellation => _stopping.Token;

    protected VmToolsPaths Paths { get; private set; } = null!;

    protected override void BeginProcessing()
    {
        Paths = VmToolsPaths.FromEnvironment();
    }

    protected override void StopProcessing() => _stopping.Cancel();

    protected override void EndProcessing() => base.EndProcessing();

    /// <summary>The session's current directory, which is not the process's.</summary>
    protected string CurrentDirectory => SessionState.Path.CurrentFileSystemLocation.ProviderPath;

    /// <summary>The VM names <paramref name="requested"/> stands for under <see cref="NamePatterns"/>' convention.</summary>
    protected static IEnumerable<string> ExpandVmNames(IEnumerable<string> requested, Core.Vms.VmStore store)
        => NamePatterns.Expand(requested, store.List, v => v.Name);

    protected string ResolvePath(string path) => GetUnresolvedProviderPathFromPSPath(path);

    protected StateDb OpenState()
    {
        try
        {
            return StateDb.Open(Paths.EnsureCreated().DatabasePath);
        }
        catch (VmToolsException e)
        {
            ThrowTerminatingError(ToErrorRecord(e));
            throw; // unreachable
        }
    }

    /// <summary>
    /// Runs core work on the thread pool while this (pipeline) thread writes the progress and verbose
    /// messages it posts. Core exceptions propagate unchanged; Ctrl+C becomes PipelineStoppedException.
    /// </summary>
    protected T Await<T>(Func<CoreContext, Task<T>> work)
    {
        // A channel rather than a BlockingCollection: completing a BlockingCollection wakes its consumer
        // with an internal OperationCanceledException, and a process's first exception costs a
        // one-cmdlet CI step milliseconds.
        var queue = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
        _pipelineQueue = queue.Writer;
        var context = new CoreContext(this, Cancellation);
        var task = Task.Run(async () =>
        {
            try { return await work(context).ConfigureAwait(false); }
            finally { queue.Writer.TryComplete(); }
        });

        while (queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (queue.Reader.TryRead(out var action)) action();
        }

        _pipelineQueue = null;
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            ThrowIfStopped(e);
            throw;
        }
    }

    /// <summary>Like <see cref="Await{T}"/>; a <see cref="VmToolsException"/> becomes a terminating ErrorRecord with its ErrorId.</summary>
    protected T RunCore<T>(Func<CoreContext, Task<T>> work)
    {
        try
        {
            return Await(work);
        }
        catch (Exception e)
        {
            ThrowIfCoreFailure(e);
            throw;
        }
    }

    /// <summary>
    /// Like <see cref="RunCore{T}"/> for synchronous core work (local file I/O), run on this pipeline
    /// thread itself, which writes progress and verbose messages as they come. No task, thread-pool hop
    /// or async state machine: in a one-cmdlet CI step those are JIT-compiled first-call costs.
    /// </summary>
    protected T RunCoreHere<T>(Func<CoreContext, T> work)
    {
        _coreRunsHereOnThread = Environment.CurrentManagedThreadId;
        try
        {
            return work(new CoreContext(this, Cancellation));
        }
        catch (Exception e)
        {
            ThrowIfCoreFailure(e);
            throw;
        }
        finally
        {
            _coreRunsHereOnThread = 0;
        }
    }

    /// <summary>
    /// The one translation of a failed core call into PowerShell's terms, for <see cref="RunCore{T}"/> and
    /// <see cref="RunCoreHere{T}"/>: Ctrl+C as <see cref="ThrowIfStopped"/>, a <see cref="VmToolsException"/>
    /// a terminating ErrorRecord with its ErrorId. Anything else returns, for the caller to rethrow unchanged.
    /// Not generic, allocation-free and reached only on failure: a successful first call of a RunCoreHere cmdlet runs none of it.
    /// </summary>
    private void ThrowIfCoreFailure(Exception e)
    {
        ThrowIfStopped(e);
        if (e is VmToolsException failure) ThrowTerminatingError(ToErrorRecord(failure));
    }

    /// <summary>The cancellation Ctrl+C caused (<see cref="StopProcessing"/>) becomes PipelineStoppedException, which ends the pipeline without an error; anything else returns.</summary>
    private void ThrowIfStopped(Exception e)
    {
        if (e is OperationCanceledException && Cancellation.IsCancellationRequested) throw new PipelineStoppedException(e.Message);
    }

    protected void RunCore(Func<CoreContext, Task> work) => RunCore(async c => { await work(c).ConfigureAwait(false); return 0; });

    /// <summary>Like <see cref="RunCore{T}"/>, but a core failure is written as a non-terminating error (one bad pipeline item) and null returned.</summary>
    protected T? TryRunCore<T>(Func<CoreContext, Task<T>> work) where T : class
    {
        try
        {
            return Await(work);
        }
        catch (VmToolsException e)
        {
            WriteError(ToErrorRecord(e));
            return null;
        }
    }

    internal void Post(Action action)
    {
        if (_coreRunsHereOnThread != 0 && _coreRunsHereOnThread == Environment.CurrentManagedThreadId)
        {
            action();
            return;
        }

        // Dropped once the work has completed: nothing drains the queue any more.
        _pipelineQueue?.TryWrite(action);
    }

    /// <summary>Runs a parse or validation from the core; its failure becomes a terminating ErrorRecord with the core's ErrorId.</summary>
    protected T Guard<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (VmToolsException e)
        {
            ThrowTerminatingError(ToErrorRecord(e));
            throw;
        }
    }

    /// <summary>
    /// PowerShell's ThrowTerminatingError ends only the statement, whatever -ErrorAction says, so a CI
    /// step written <c>Start-FlightVm … -ErrorAction Stop; next</c> would run on and exit 0. Built-in
    /// cmdlets stop such a script: their errors go through WriteError, which -ErrorAction Stop turns
    /// into an ActionPreferenceStopException that ends the script (and that try/catch receives with
    /// the same ErrorId). With -ErrorAction Stop the record takes that path too.
    /// </summary>
    protected new void ThrowTerminatingError(ErrorRecord errorRecord)
    {
        if (MyInvocation.BoundParameters.TryGetValue("ErrorAction", out var action) && action is ActionPreference.Stop) WriteError(errorRecord);
        base.ThrowTerminatingError(errorRecord);
    }

    protected ErrorRecord ToErrorRecord(VmToolsException e) => new(e, e.ErrorId, Map(e.Kind), e.Target);

    protected void ThrowArgumentError(string errorId, string message, object? target)
        => ThrowTerminatingError(new ErrorRecord(new VmToolsException(errorId, FailureKind.InvalidArgument, message) { Target = target }, errorId, ErrorCategory.InvalidArgument, target));

    internal static ErrorCategory Map(FailureKind kind) => kind switch
    {
        FailureKind.InvalidArgument => ErrorCategory.InvalidArgument,
        FailureKind.InvalidData => ErrorCategory.InvalidData,
        FailureKind.NotFound => ErrorCategory.ObjectNotFound,
        FailureKind.PermissionDenied => ErrorCategory.PermissionDenied,
        FailureKind.AuthenticationFailed => ErrorCategory.AuthenticationError,
        FailureKind.ConnectionFailed => ErrorCategory.ConnectionError,
        FailureKind.ResourceExists => ErrorCategory.ResourceExists,
        FailureKind.ResourceBusy => ErrorCategory.ResourceBusy,
        FailureKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        FailureKind.LimitsExceeded => ErrorCategory.LimitsExceeded,
        FailureKind.NotImplemented => ErrorCategory.NotImplemented,
        FailureKind.OperationStopped => ErrorCategory.OperationStopped,
        FailureKind.OperationTimeout => ErrorCategory.OperationTimeout,
        FailureKind.SecurityError => ErrorCategory.SecurityError,
        FailureKind.WriteError => ErrorCategory.WriteError,
        FailureKind.ReadError => ErrorCategory.ReadError,
        _ => ErrorCategory.InvalidOperation,
    };
}
