using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Shows the transient truth about VMs: qemu PID and start time, boot id, tap, loops, dm target, liveness, and the DHCP server of a VmTools bridge.</summary>
[Cmdlet(VerbsCommon.Get, "VmHandles")]
[OutputType(typeof(VmHandleReport))]
public sealed class GetVmHandlesCommand : VmToolsCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var store = new VmStore(db, Paths);
        var names = ExpandVmNames(Name ?? new[] { "*" }, store);
        var processes = ProcessTable.Scan();
        foreach (var name in names)
        {
            try
            {
                var vm = store.Get(name);
                WriteObject(HandleDiscovery.Report(vm, HandleDiscovery.Discover(vm, processes, BootId.Current), Paths));
            }
            catch (Core.VmToolsException e)
            {
                WriteError(ToErrorRecord(e));
            }
        }
    }
}
