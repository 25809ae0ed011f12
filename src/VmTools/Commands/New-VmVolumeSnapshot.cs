using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>Takes a zfs snapshot (dataset@&lt;new id&gt;) of a volume and mounts it read-only under the working directory.</summary>
[Cmdlet(VerbsCommon.New, "VmVolumeSnapshot", SupportsShouldProcess = true)]
[OutputType(typeof(Volume))]
public sealed class NewVmVolumeSnapshotCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    protected override void ProcessRecord()
    {
        if (!ShouldProcess($"volume '{VolumeId}'", "Snapshot volume")) return;
        var snap = WithStore((store, ctx) => store.CreateSnapshotAsync(VolumeId, ctx.Cancellation));
        if (snap is not null) WriteObject(snap);
    }
}
