using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>Lists volumes and snapshots, or gets them by id or name. A volume whose dataset vanished shows State Missing.</summary>
[Cmdlet(VerbsCommon.Get, "VmVolume")]
[OutputType(typeof(Volume))]
public sealed class GetVmVolumeCommand : VolumeCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("VolumeId")]
    [SupportsWildcards]
    public string[]? Id { get; set; }

    /// <summary>Only volumes on this recorded pool.</summary>
    [Parameter]
    public string? Pool { get; set; }

    /// <summary>Leave snapshots out of the listing.</summary>
    [Parameter]
    public SwitchParameter ExcludeSnapshots { get; set; }

    protected override void ProcessRecord()
    {
        if (Id is null)
        {
            var all = WithStoreOrStop((store, _) => Task.FromResult(store.Volumes));
            WriteObject(all.Where(v => (Pool is null || v.Pool == Pool) && !(ExcludeSnapshots && v.IsSnapshot)), enumerateCollection: true);
            return;
        }

        foreach (var id in ExpandVolumeIds(Id))
        {
            var v = WithStore((store, _) => Task.FromResult(store.GetVolume(id)));
            if (v is not null) WriteObject(v);
        }
    }
}
