using System.Management.Automation;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Resets the guest (QMP system_reset, like the reset button); it reboots in the same qemu with the same overlay.</summary>
[Cmdlet(VerbsLifecycle.Restart, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class RestartFlightVmCommand : VmRunControlCmdlet
{
    protected override string Action => "Reset VM (reboot the guest)";

    protected override Task<FlightVm> ControlAsync(VmLifecycle lifecycle, string name, CancellationToken cancellationToken) => lifecycle.RestartAsync(name, cancellationToken);
}
