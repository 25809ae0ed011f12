namespace VmTools.Core.Volumes;

/// <summary>
/// A volume or a snapshot as VmTools records it. A snapshot is a volume whose <see cref="Dataset"/>
/// names a zfs snapshot (<c>pool/type/parent@id</c>); it is mounted read-only at <see cref="Mountpoint"/>.
/// Property names match the parameters of the next cmdlet (Id, VolumeId, DiskImagePath).
/// </summary>
public sealed record Volume
{
    public required string Id { get; init; }

    public string? Name { get; init; }

    /// <summary>The recorded pool (provider) name, e.g. "default".</summary>
    public required string Pool { get; init; }

    public required string Type { get; init; }

    public required string Dataset { get; init; }

    public required string Mountpoint { get; init; }

    public bool IsSnapshot => Dataset.Contains('@');

    /// <summary>For a snapshot: the zfs snapshot name (after '@'), kept across send/receive for later incrementals.</summary>
    public string? SnapshotName => IsSnapshot ? Dataset[(Dataset.IndexOf('@') + 1)..] : null;

    /// <summary>For a snapshot: the volume it was taken of (or received into).</summary>
    public string? ParentVolumeId { get; init; }

    /// <summary>For a clone: the snapshot it was created from.</summary>
    public string? ParentSnapshotId { get; init; }

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    public long? QuotaBytes { get; init; }

    /// <summary>A disk image file inside the volume, for use as a VM data disk (Start-FlightVm -Volume).</summary>
    public string? DiskImagePath { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public VolumeState State { get; init; } = VolumeState.Available;

    /// <summary>The read-only clone that shows a snapshot's files (zfs-fuse cannot mount snapshots directly).</summary>
    internal string? ViewDataset { get; init; }

    /// <summary>The dataset a snapshot belongs to (before '@'), or the volume's own dataset.</summary>
    internal string FilesystemDataset => IsSnapshot ? Dataset[..Dataset.IndexOf('@')] : Dataset;

    /// <summary>Same as <see cref="Id"/>; lets snapshot-taking cmdlets bind it by property name.</summary>
    public string VolumeId => Id;
}
