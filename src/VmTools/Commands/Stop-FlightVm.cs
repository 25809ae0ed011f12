using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Powers a VM down through QMP, kills qemu after the timeout, and releases its tap, loops and dm target.</summary>
[Cmdlet(VerbsLifecycle.Stop, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class StopFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    /// <summary>Seconds to wait for the guest to power off before qemu is killed.</summary>
    [Parameter]
    [ValidateRange(0, 3600)]
    public int Timeout { get; set; } = 30;

    /// <summary>Kill qemu at once (no powerdown), and proceed even when handles.json is corrupt.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var lifecycle = new VmLifecycle(db, Paths);
        foreach (var name in ExpandVmNames(Name, lifecycle.Store))
        {
            if (!ShouldProcess(name, Force ? "Kill VM" : "Stop VM")) continue;
            var vm = TryRunCore(ctx => lifecycle.StopAsync(name, TimeSpan.FromSeconds(Timeout), Force, ctx.Verbose, ctx.Cancellation));
            if (vm is not null && PassThru) WriteObject(vm);
        }
    }
}
