using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Rolls a volume back to one of its snapshots (zfs rollback). Newer snapshots are refused unless
/// -DestroyNewer, which destroys them and their records; -WhatIf names each one.
/// </summary>
[Cmdlet(VerbsData.Restore, "VmVolumeSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = IdSet)]
[OutputType(typeof(Volume))]
public sealed class RestoreVmVolumeSnapshotCommand : VolumeCmdlet
{
    private const string IdSet = "VolumeId";
    private const string NameSet = "Name";
    private const string InputSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = IdSet)]
    [ValidateNotNullOrEmpty]
    public string VolumeId { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = null!;

    /// <summary>A snapshot from Get-VmVolumeSnapshot, or a volume from Get-VmVolume together with -Snapshot.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputSet)]
    public Volume InputObject { get; set; } = null!;

    /// <summary>The snapshot's id or zfs snapshot name.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = IdSet)]
    [Parameter(Mandatory = true, ParameterSetName = NameSet)]
    [Parameter(ParameterSetName = InputSet)]
    [ValidateNotNullOrEmpty]
    public string? Snapshot { get; set; }

    [Parameter]
    public SwitchParameter DestroyNewer { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case IdSet:
                Restore(VolumeId, Snapshot!);
                break;
            case NameSet:
                foreach (var id in ExpandVolumeIds(new[] { Name })) Restore(id, Snapshot!);
                break;
            case InputSet when InputObject.IsSnapshot:
                if (Snapshot is not null)
                {
                    ThrowArgumentError("VolumeSnapshotGivenTwice", $"A snapshot ('{InputObject.Id}') was piped and -Snapshot '{Snapshot}' given; give one.", Snapshot);
                }

                Restore(InputObject.ParentVolumeId!, InputObject.Id);
                break;
            case InputSet when Snapshot is null:
                WriteError(new ErrorRecord(new PSArgumentException($"Volume '{InputObject.Id}' was piped without -Snapshot: name the snapshot to go back to, or pipe it from Get-VmVolumeSnapshot."),
                    "VolumeSnapshotUnspecified", ErrorCategory.InvalidArgument, InputObject.Id));
                break;
            default:
                Restore(InputObject.Id, Snapshot!);
                break;
        }
    }

    private void Restore(string volume, string snapshot)
    {
        var plan = WithStore((store, ctx) => new VolumeRollback(store).PlanAsync(volume, snapshot, DestroyNewer, VmRecords, ctx.Cancellation));
        if (plan is null) return;
        var destroyed = plan.Newer.Count == 0 ? "no snapshot destroyed" : "destroying " + VolumeRollback.Describe(plan.Newer);
        var target = $"volume '{plan.Volume.Id}'{(plan.Volume.Name is null ? string.Empty : $" ({plan.Volume.Name})")}";
        if (!ShouldProcess(target, $"Roll back to snapshot '{plan.Snapshot.Id}', discarding later changes; {destroyed}")) return;
        var restored = WithStore((store, ctx) => new VolumeRollback(store).RestoreAsync(plan.Volume.Id, plan.Snapshot.Id, DestroyNewer, VmRecords, ctx.Cancellation));
        if (restored is not null && PassThru) WriteObject(restored);
    }
}
