using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Lists the zfs snapshots a (receiving) volume already has: name, guid, creation txg. Give them to
/// Send-VmVolumeSnapshot -Have so it sends only the delta from the newest snapshot both sides share.
/// </summary>
[Cmdlet(VerbsCommon.Get, "VmVolumeHave")]
[OutputType(typeof(VolumeHave))]
public sealed class GetVmVolumeHaveCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    protected override void ProcessRecord()
    {
        var haves = WithStore((store, ctx) => store.ListHavesAsync(VolumeId, ctx.Cancellation));
        if (haves is not null) WriteObject(haves, enumerateCollection: true);
    }
}
