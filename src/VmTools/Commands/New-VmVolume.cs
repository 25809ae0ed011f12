using System.Collections;
using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Creates a volume (dataset &lt;pool&gt;/&lt;type&gt;/&lt;id&gt;, mounted under the pool's working
/// directory), a clone of a snapshot (-FromSnapshot), and optionally a VM data disk image inside it.
/// </summary>
[Cmdlet(VerbsCommon.New, "VmVolume", SupportsShouldProcess = true, DefaultParameterSetName = "New")]
[OutputType(typeof(Volume))]
public sealed class NewVmVolumeCommand : VolumeCmdlet
{
    [Parameter(Position = 0)]
    public string? Name { get; set; }

    [Parameter(ParameterSetName = "New")]
    [ValidateSet(VolumeTypes.Data, VolumeTypes.Disk)]
    public string? Type { get; set; }

    /// <summary>The recorded pool (Initialize-VmVolumePool -Name); "default" when omitted.</summary>
    [Parameter(ParameterSetName = "New")]
    public string Pool { get; set; } = VolumePool.DefaultName;

    [Parameter]
    public Hashtable? Metadata { get; set; }

    [Parameter(ParameterSetName = "New")]
    [ValidateRange(1, long.MaxValue)]
    public long QuotaBytes { get; set; }

    /// <summary>Clone this snapshot (id or name) into a new writable volume.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Clone")]
    [ValidateNotNullOrEmpty]
    public string FromSnapshot { get; set; } = null!;

    /// <summary>Also create a disk image of this size inside the volume (DiskImagePath).</summary>
    [Parameter(ParameterSetName = "New")]
    [ValidateRange(1, 65536)]
    public int DiskSizeGB { get; set; }

    [Parameter(ParameterSetName = "New")]
    public DiskImageFormat DiskFormat { get; set; } = DiskImageFormat.Raw;

    protected override void EndProcessing()
    {
        var request = new VolumeRequest
        {
            Name = Name,
            Type = Type ?? (DiskSizeGB > 0 ? VolumeTypes.Disk : VolumeTypes.Data),
            Pool = Pool,
            Metadata = ToMetadata(Metadata),
            QuotaBytes = QuotaBytes > 0 ? QuotaBytes : null,
        };
        var what = ParameterSetName == "Clone" ? $"clone of snapshot '{FromSnapshot}'" : $"{request.Type} volume{(Name is null ? string.Empty : " '" + Name + "'")} on pool '{Pool}'";
        if (!ShouldProcess(what, "Create volume")) return;
        var volume = WithStoreOrStop(async (store, ctx) =>
        {
            if (ParameterSetName == "Clone") return await store.CloneAsync(FromSnapshot, request, ctx.Cancellation).ConfigureAwait(false);
            var v = await store.CreateVolumeAsync(request, ctx.Cancellation).ConfigureAwait(false);
            if (DiskSizeGB <= 0) return v;
            try
            {
                return await store.CreateDiskImageAsync(v.Id, (long)DiskSizeGB << 30, DiskFormat, cancellationToken: ctx.Cancellation).ConfigureAwait(false);
            }
            catch
            {
                await store.RemoveAsync(v.Id, recurse: false, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
        });
        WriteObject(volume);
    }
}
