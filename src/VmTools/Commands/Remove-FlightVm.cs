using System.Management.Automation;
using VmTools.Completers;

namespace VmTools.Commands;

/// <summary>Deletes a VM: its directory (overlay, console log, scratch file) and its record.</summary>
[Cmdlet(VerbsCommon.Remove, "FlightVm", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Core.Vms.FlightVm))]
public sealed class RemoveFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    /// <summary>Kill a running VM first instead of refusing.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Write each removed VM's last record.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var lifecycle = new Core.Vms.VmLifecycle(db, Paths);
        foreach (var name in ExpandVmNames(Name, lifecycle.Store))
        {
            if (!ShouldProcess(name, "Remove VM, its disk overlay and its record")) continue;
            var removed = TryRunCore(ctx => lifecycle.RemoveAsync(name, Force, ctx.Cancellation));
            if (removed is not null && PassThru) WriteObject(removed);
        }
    }
}
