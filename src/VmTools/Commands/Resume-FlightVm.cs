using System.Management.Automation;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Lets a paused VM's guest run again (QMP cont); the record says Running.</summary>
[Cmdlet(VerbsLifecycle.Resume, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class ResumeFlightVmCommand : VmRunControlCmdlet
{
    protected override string Action => "Resume VM";

    protected override Task<FlightVm> ControlAsync(VmLifecycle lifecycle, string name, CancellationToken cancellationToken) => lifecycle.ResumeAsync(name, cancellationToken);
}
