using System.Management.Automation;
using VmTools.Completers;

namespace VmTools.Commands;

/// <summary>Deletes a VM: its directory (overlay, console log, scratch file) and its record.</summary>
[Cmdlet(VerbsCommon.Remove, "FlightVm", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
public sealed class RemoveFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    /// <summary>Kill a running VM first instead of refusing.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var lifecycle = new Core.Vms.VmLifecycle(db, Paths);
        foreach (var name in Name)
        {
            if (!ShouldProcess(name, "Remove VM, its disk overlay and its record")) continue;
            TryRunCore(async ctx => { await lifecycle.RemoveAsync(name, Force, ctx.Cancellation).ConfigureAwait(false); return name; });
        }
    }
}
