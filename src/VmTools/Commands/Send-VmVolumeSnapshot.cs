using System.Management.Automation;
using VmTools.Core.Host;
using VmTools.Core.Volumes;
using VmTools.Core.Volumes.Replication;

namespace VmTools.Commands;

/// <summary>
/// Sends a snapshot as a zfs stream: to a file (-Path), to a .NET stream (-Stream), or straight into
/// a receiving volume (-TargetVolumeId, any pool). Incremental from the newest snapshot shared with
/// the receiver (its haves), else full. Ctrl+C stops both zfs send and zfs receive. -Destination
/// replicates to another host over ssh (ssh://user@host[:port]/pool/dataset: one value that names
/// the host and the dataset on it, as ssh and git spell it, so it can sit in one variable shared
/// with Sync-VmVolume).
/// </summary>
[Cmdlet(VerbsCommunications.Send, "VmVolumeSnapshot", SupportsShouldProcess = true, DefaultParameterSetName = "File")]
[OutputType(typeof(VolumeSendResult), ParameterSetName = new[] { "File", "Stream" })]
[OutputType(typeof(Volume), ParameterSetName = new[] { "Volume" })]
[OutputType(typeof(VolumeReplicaResult), ParameterSetName = new[] { "Ssh" })]
public sealed class SendVmVolumeSnapshotCommand : VolumeCmdlet
{
    /// <summary>The snapshot (id or name).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("SnapshotId")]
    [ValidateNotNullOrEmpty]
    public string Id { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = "File")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = "Stream")]
    public Stream Stream { get; set; } = null!;

    /// <summary>Receive straight into this volume; its haves are read automatically.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Volume")]
    [ValidateNotNullOrEmpty]
    public string TargetVolumeId { get; set; } = null!;

    /// <summary>Replicate to a dataset on another host: ssh://[user@]host[:port]/pool/dataset.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Ssh")]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    [Parameter(ParameterSetName = "Ssh")]
    [ValidateNotNullOrEmpty]
    public string? IdentityFile { get; set; }

    [Parameter(ParameterSetName = "Ssh")]
    [ValidateNotNullOrEmpty]
    public string? KnownHostsFile { get; set; }

    [Parameter(ParameterSetName = "Ssh")]
    public SwitchParameter SkipHostKeyCheck { get; set; }

    /// <summary>The receiver's snapshots (Get-VmVolumeHave on the receiving side); none means a full stream.</summary>
    [Parameter(ParameterSetName = "File")]
    [Parameter(ParameterSetName = "Stream")]
    public VolumeHave[]? Have { get; set; }

    /// <summary>Replace an existing file at -Path; with -Destination, roll a diverged replica back to the shared snapshot.</summary>
    [Parameter(ParameterSetName = "File")]
    [Parameter(ParameterSetName = "Ssh")]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case "Volume":
                if (!ShouldProcess($"volume '{TargetVolumeId}'", $"Receive snapshot '{Id}'")) return;
                Write(WithStore((store, ctx) => new VolumeTransfer(store).TransferAsync(Id, TargetVolumeId, ctx, ctx.Cancellation)));
                break;
            case "Ssh":
                var options = SshOptionsFrom(IdentityFile, KnownHostsFile, SkipHostKeyCheck);
                var destination = RunCore(_ => Task.FromResult(ReplicaDestination.Parse(Destination)));
                if (!ShouldProcess(destination.ToString(), $"Replicate snapshot '{Id}'{(Force ? ", rolling a diverged replica back" : string.Empty)}")) return;
                Write(WithStore((store, ctx) =>
                {
                    var replicator = new VolumeReplicator(store, ProcessRunner.Instance);
                    return replicator.SendAsync(Id, replicator.Connect(destination, options), Force, ctx, ctx.Cancellation);
                }));
                break;
            case "Stream":
                Write(WithStore((store, ctx) => new VolumeTransfer(store).SendAsync(Id, Have, Stream, ctx, ctx.Cancellation)));
                break;
            default:
                var path = ResolvePath(Path);
                if (!ShouldProcess(path, $"Write stream of snapshot '{Id}'")) return;
                Write(WithStore((store, ctx) => new VolumeTransfer(store).SendToFileAsync(Id, Have, path, Force, ctx, ctx.Cancellation)));
                break;
        }
    }

    private void Write(object? result)
    {
        if (result is not null) WriteObject(result);
    }
}
