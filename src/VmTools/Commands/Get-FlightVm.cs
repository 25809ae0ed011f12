using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Lists the durable VM records (what each VM is); Get-VmHandles shows what is running.</summary>
[Cmdlet(VerbsCommon.Get, "FlightVm")]
[OutputType(typeof(FlightVm))]
public sealed class GetFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    [Parameter]
    public VmState? State { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var store = new VmStore(db, Paths);
        foreach (var name in ExpandVmNames(Name ?? new[] { "*" }, store))
        {
            var vm = TryRunCore(_ => Task.FromResult(store.Get(name)));
            if (vm is not null && (State is null || vm.State == State)) WriteObject(vm);
        }
    }
}
