using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>
/// Runs a shell command in VMs over SSH and returns its exit code and output: up to -ThrottleLimit VMs at
/// once, each result written as it completes, a failure per VM a non-terminating error.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "FlightVmCommand")]
[OutputType(typeof(VmCommandResult))]
public sealed class InvokeFlightVmCommandCommand : VmToolsCmdlet, IDisposable
{
    private StateDb? _db;
    private VmStore? _store;
    private string? _key;
    private ThrottledPipeline? _running;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Command { get; set; } = null!;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string User { get; set; } = "root";

    /// <summary>The private key to log in with; default: ssh's own (agent, ~/.ssh/id_*).</summary>
    [Parameter]
    public string? KeyPath { get; set; }

    /// <summary>Seconds the command may run; then ssh is killed and the guest hangs up the command (VmCommandTimeout).</summary>
    [Parameter]
    [ValidateRange(1, 86_400)]
    public int Timeout { get; set; }

    [Parameter]
    [ValidateRange(1, 32)]
    public int ThrottleLimit { get; set; } = 4;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        Guard(() => VmSsh.ValidateUser(User));
        _key = KeyPath is null ? null : ResolvePath(KeyPath);
        if (_key is not null && !File.Exists(_key)) ThrowArgumentError("VmSshKeyNotFound", $"The key file '{_key}' does not exist.", _key);
        _db = OpenState();
        _store = new VmStore(_db, Paths);
        _running = new ThrottledPipeline(ThrottleLimit, Cancellation);
    }

    protected override void ProcessRecord()
    {
        TimeSpan? timeout = Timeout > 0 ? TimeSpan.FromSeconds(Timeout) : null;
        foreach (var name in ExpandVmNames(Name, _store!))
        {
            FlightVm vm;
            try { vm = _store!.Get(name); }
            catch (VmToolsException e) { WriteError(ToErrorRecord(e)); continue; }

            _running!.Start(async ct =>
            {
                try
                {
                    var result = await VmSsh.RunAsync(ProcessRunner.Instance, vm, Command, User, _key, timeout, ct).ConfigureAwait(false);
                    return () => WriteObject(result);
                }
                catch (VmToolsException e)
                {
                    return () => WriteError(ToErrorRecord(e));
                }
            });
        }

        _running!.Drain();
    }

    protected override void EndProcessing()
    {
        try
        {
            _running?.Finish();
        }
        catch (OperationCanceledException e) when (Cancellation.IsCancellationRequested)
        {
            throw new PipelineStoppedException(e.Message);
        }
    }

    /// <summary>PowerShell disposes the cmdlet also when the pipeline ends early (an error, Ctrl+C), where EndProcessing never runs.</summary>
    public void Dispose() => _db?.Dispose();
}
