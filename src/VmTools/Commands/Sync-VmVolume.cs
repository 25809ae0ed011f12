using System.Management.Automation;
using VmTools.Core.Host;
using VmTools.Core.Volumes.Replication;

namespace VmTools.Commands;

/// <summary>
/// Keeps a replica of a volume current on another host: snapshots the volume now, sends what the
/// replica lacks over ssh (incremental from the newest shared snapshot), and with -KeepLast keeps
/// only the newest N snapshots on each side.
/// </summary>
[Cmdlet(VerbsData.Sync, "VmVolume", SupportsShouldProcess = true)]
[OutputType(typeof(VolumeReplicaResult))]
public sealed class SyncVmVolumeCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? KeepLast { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? IdentityFile { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? KnownHostsFile { get; set; }

    [Parameter]
    public SwitchParameter SkipHostKeyCheck { get; set; }

    /// <summary>Roll a diverged replica back to the shared snapshot (destroying what it has beyond it).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        var options = SshOptionsFrom(IdentityFile, KnownHostsFile, SkipHostKeyCheck);
        var destination = RunCore(_ => Task.FromResult(ReplicaDestination.Parse(Destination)));
        var prune = KeepLast is { } n ? $", keeping the newest {n} snapshot(s) on each side" : string.Empty;
        if (!ShouldProcess(destination.ToString(), $"Snapshot volume '{VolumeId}' and replicate it{prune}")) return;
        var result = WithStore((store, ctx) =>
        {
            var replicator = new VolumeReplicator(store, ProcessRunner.Instance);
            return replicator.SyncAsync(VolumeId, replicator.Connect(destination, options), Force, KeepLast, ctx, ctx.Cancellation);
        });
        if (result is not null) WriteObject(result);
    }
}
