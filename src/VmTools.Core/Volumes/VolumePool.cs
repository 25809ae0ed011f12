namespace VmTools.Core.Volumes;

/// <summary>
/// A volume provider as recorded once in the state database: which kind, which zfs pool, the
/// file vdev that backs it and the working directory mountpoints live under. On every open the
/// recorded pool is brought back (imported from its vdev) rather than created anew.
/// </summary>
public sealed record VolumePool
{
    public const string DefaultName = "default";

    public required string Name { get; init; }

    public string Kind { get; init; } = ZfsProvider.KindName;

    public required string PoolName { get; init; }

    public required string VdevPath { get; init; }

    public long VdevSizeBytes { get; init; }

    public required string WorkingDirectory { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Online when the pool answered on this open; Unavailable when it could not be brought back.</summary>
    public VolumePoolState State { get; init; } = VolumePoolState.Online;

    /// <summary>Why the pool is unavailable (zfs's own words), empty when online.</summary>
    public string StateDetail { get; init; } = string.Empty;

    /// <summary>Where volumes of <paramref name="type"/> are mounted.</summary>
    public string MountDirectory(string type) => Path.Combine(WorkingDirectory, "mnt", type);
}

public enum VolumePoolState
{
    Online,
    Unavailable,
}
