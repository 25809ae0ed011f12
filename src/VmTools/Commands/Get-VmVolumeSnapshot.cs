using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>Lists the snapshots taken of (or received into) a volume, oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "VmVolumeSnapshot")]
[OutputType(typeof(Volume))]
public sealed class GetVmVolumeSnapshotCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    protected override void ProcessRecord()
    {
        var snaps = WithStore((store, _) => Task.FromResult(store.SnapshotsOf(VolumeId)));
        if (snaps is not null) WriteObject(snaps, enumerateCollection: true);
    }
}
