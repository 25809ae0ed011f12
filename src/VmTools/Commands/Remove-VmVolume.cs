using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Destroys a volume or snapshot and forgets it. A volume with snapshots is refused unless -Recurse;
/// a snapshot a clone was made from is refused. A Missing volume only loses its record.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "VmVolume", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Volume))]
public sealed class RemoveVmVolumeCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Id { get; set; } = null!;

    /// <summary>Also destroy the volume's snapshots.</summary>
    [Parameter]
    public SwitchParameter Recurse { get; set; }

    /// <summary>Write the removed volumes and snapshots.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var id in ExpandVolumeIds(Id)) Remove(id);
    }

    private void Remove(string id)
    {
        var found = WithStore((store, _) => Task.FromResult(new { Volume = store.GetVolume(id), Snapshots = store.SnapshotsOf(store.GetVolume(id).Id).Count }));
        if (found is null) return;
        var v = found.Volume;
        var what = $"{(v.IsSnapshot ? "snapshot" : "volume")} '{v.Id}' ({v.Dataset}){(Recurse && found.Snapshots > 0 ? $" and its {found.Snapshots} snapshot(s)" : string.Empty)}";
        if (!ShouldProcess(what, "Remove volume")) return;
        var removed = WithStore((store, ctx) => store.RemoveAsync(v.Id, Recurse, ctx.Cancellation));
        if (PassThru && removed is not null) WriteObject(removed, enumerateCollection: true);
    }
}
