using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Lets a paused VM's guest run again (QMP cont); the record says Running.</summary>
[Cmdlet(VerbsLifecycle.Resume, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class ResumeFlightVmCommand : VmToolsCmdlet
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
            if (!ShouldProcess(name, "Resume VM")) continue;
            var vm = TryRunCore(ctx => lifecycle.ResumeAsync(name, ctx.Cancellation));
            if (vm is not null && PassThru) WriteObject(vm);
        }
    }
}
