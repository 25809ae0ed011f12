namespace VmTools.Core.Volumes;

/// <summary>
/// The volume types, each a parent dataset <c>&lt;pool&gt;/&lt;type&gt;</c> and a mount folder
/// <c>&lt;working dir&gt;/mnt/&lt;type&gt;</c>. zfs-fuse has no zvols, so flynn's squashfs/ext2
/// (zvol-backed) types are not offered; a "disk" volume is a filesystem holding a disk image file.
/// </summary>
public static class VolumeTypes
{
    public const string Data = "data";

    public const string Disk = "disk";

    public static IReadOnlyList<string> All { get; } = new[] { Data, Disk };

    /// <summary>Parent of the read-only clones that show snapshots' files.</summary>
    internal const string Views = "views";
}
