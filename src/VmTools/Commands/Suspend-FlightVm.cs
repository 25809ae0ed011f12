using System.Management.Automation;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Pauses a VM's guest CPUs (QMP stop); qemu and the guest's memory stay, the record says Paused.</summary>
[Cmdlet(VerbsLifecycle.Suspend, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class SuspendFlightVmCommand : VmRunControlCmdlet
{
    protected override string Action => "Pause VM";

    protected override Task<FlightVm> ControlAsync(VmLifecycle lifecycle, string name, CancellationToken cancellationToken) => lifecycle.SuspendAsync(name, cancellationToken);
}
