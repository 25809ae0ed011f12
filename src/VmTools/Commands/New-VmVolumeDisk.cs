using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Creates a VM data disk image inside a volume (sparse raw, or qcow2 via qemu-img) and records it as
/// the volume's DiskImagePath, which Start-FlightVm -Volume binds by property name.
/// </summary>
[Cmdlet(VerbsCommon.New, "VmVolumeDisk", SupportsShouldProcess = true)]
[OutputType(typeof(Volume))]
public sealed class NewVmVolumeDiskCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateRange(1, 65536)]
    public int SizeGB { get; set; }

    [Parameter]
    public DiskImageFormat Format { get; set; } = DiskImageFormat.Raw;

    /// <summary>The image's file name inside the volume; disk.img or disk.qcow2 by default.</summary>
    [Parameter]
    public string? FileName { get; set; }

    protected override void ProcessRecord()
    {
        if (!ShouldProcess($"volume '{VolumeId}'", $"Create {SizeGB} GB {Format} disk image")) return;
        var v = WithStore((store, ctx) => store.CreateDiskImageAsync(VolumeId, (long)SizeGB << 30, Format, FileName, ctx.Cancellation));
        if (v is not null) WriteObject(v);
    }
}
