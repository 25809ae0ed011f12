using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Resets the guest (QMP system_reset, like the reset button); it reboots in the same qemu with the same overlay.</summary>
[Cmdlet(VerbsLifecycle.Restart, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class RestartFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var lifecycle = new VmLifecycle(db, Paths);
        foreach (var name in ExpandVmNames(Name, lifecycle.Store))
        {
            if (!ShouldProcess(name, "Reset VM (reboot the guest)")) continue;
            var vm = TryRunCore(ctx => lifecycle.RestartAsync(name, ctx.Cancellation));
            if (vm is not null && PassThru) WriteObject(vm);
        }
    }
}
