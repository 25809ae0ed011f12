using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Receives a zfs stream (a file or a .NET stream) into a volume and records what arrived as a new
/// snapshot volume; the zfs snapshot name is kept so later incrementals find their base. The
/// volume's live content becomes the snapshot's (zfs receive -F).
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "VmVolumeSnapshot", SupportsShouldProcess = true, DefaultParameterSetName = "File")]
[OutputType(typeof(Volume))]
public sealed class ReceiveVmVolumeSnapshotCommand : VolumeCmdlet
{
    /// <summary>The receiving volume (id or name); binds the Id of a Volume from the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = "File", ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = "Stream")]
    public Stream Stream { get; set; } = null!;

    protected override void ProcessRecord()
    {
        if (!ShouldProcess($"volume '{VolumeId}'", "Receive snapshot stream")) return;
        Volume? received;
        if (ParameterSetName == "Stream")
        {
            received = WithStore((store, ctx) => new VolumeTransfer(store).ReceiveAsync(VolumeId, Stream, ctx, ctx.Cancellation));
        }
        else
        {
            var path = ResolvePath(Path);
            if (!File.Exists(path))
            {
                WriteError(new ErrorRecord(new FileNotFoundException($"Stream file '{path}' does not exist.", path), "VolumeStreamFileNotFound", ErrorCategory.ObjectNotFound, path));
                return;
            }

            received = WithStore(async (store, ctx) =>
            {
                await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
                return await new VolumeTransfer(store).ReceiveAsync(VolumeId, file, ctx, ctx.Cancellation).ConfigureAwait(false);
            });
        }

        if (received is not null) WriteObject(received);
    }
}
