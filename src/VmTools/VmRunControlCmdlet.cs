using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools;

/// <summary>
/// What Restart-, Suspend- and Resume-FlightVm share: VM names (wildcards, pipeline), one QMP
/// command per VM through <see cref="VmLifecycle"/>, a failure written for that VM alone, and
/// -PassThru. A subclass says only what the change is called and which lifecycle call makes it.
/// </summary>
public abstract class VmRunControlCmdlet : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>The ShouldProcess action, e.g. "Pause VM".</summary>
    protected abstract string Action { get; }

    protected abstract Task<FlightVm> ControlAsync(VmLifecycle lifecycle, string name, CancellationToken cancellationToken);

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var lifecycle = new VmLifecycle(db, Paths);
        foreach (var name in ExpandVmNames(Name, lifecycle.Store))
        {
            if (!ShouldProcess(name, Action)) continue;
            var vm = TryRunCore(ctx => ControlAsync(lifecycle, name, ctx.Cancellation));
            if (vm is not null && PassThru) WriteObject(vm);
        }
    }
}
