using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>Lists the recorded volume pools and whether each came back online.</summary>
[Cmdlet(VerbsCommon.Get, "VmVolumePool")]
[OutputType(typeof(VolumePool))]
public sealed class GetVmVolumePoolCommand : VolumeCmdlet
{
    [Parameter(Position = 0)]
    public string? Name { get; set; }

    protected override void EndProcessing()
    {
        var pools = WithStoreOrStop((store, _) => Task.FromResult(store.Pools));
        if (Name is null) { WriteObject(pools, enumerateCollection: true); return; }
        var pool = WithStore((store, _) => Task.FromResult(store.GetPool(Name)));
        if (pool is not null) WriteObject(pool);
    }
}
