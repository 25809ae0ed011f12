using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Waits until a VM is ready: a console line matches -ReadyPattern, or SSH answers on its forwarded port.</summary>
[Cmdlet(VerbsLifecycle.Wait, "FlightVm")]
[OutputType(typeof(FlightVm))]
public sealed class WaitFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    [Parameter]
    public string? ReadyPattern { get; set; }

    [Parameter]
    [ValidateRange(1, 86_400)]
    public int Timeout { get; set; } = 300;

    /// <summary>Seconds a running VM may keep an empty console before a warning names its accelerator; 0: never.</summary>
    [Parameter]
    [ValidateRange(0, 86_400)]
    public int SilentConsoleWarning { get; set; } = (int)VmLifecycle.DefaultSilentConsoleWarning.TotalSeconds;

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var lifecycle = new VmLifecycle(db, Paths);
        foreach (var name in ExpandVmNames(Name, lifecycle.Store))
        {
            var vm = TryRunCore(ctx => lifecycle.WaitAsync(name, ReadyPattern, TimeSpan.FromSeconds(Timeout), ctx.Cancellation, TimeSpan.FromSeconds(SilentConsoleWarning), ctx.Warning));
            if (vm is not null) WriteObject(vm);
        }
    }
}
