namespace VmTools.Core.Images;

/// <summary>
/// One image in the local store, as Get-Qcow2CacheImage shows it: a layer digest and its folder, what it
/// costs on disk, the references it was pulled or published as, and the VM records whose overlays sit on it.
/// It is a snapshot of the store; removal re-reads it under the digest's lock.
/// </summary>
public sealed record CachedImage
{
    public required string LayerDigest { get; init; }

    /// <summary>The store's disk file (inside the store's own folder for this digest).</summary>
    public required string Path { get; init; }

    /// <summary>Bytes allocated on disk by the files of the store's folder (st_blocks × 512).</summary>
    public required long Size { get; init; }

    /// <summary>What removing the image would give back: blocks of files with no other hard link (0 for a disk adopted by hard link).</summary>
    public required long ReclaimableBytes { get; init; }

    /// <summary>The disk file's length in bytes (as verified when stored).</summary>
    public required long DiskLength { get; init; }

    /// <summary>registry/repository:tag (or @digest for a pin) for every reference recorded for this layer.</summary>
    public required IReadOnlyList<string> References { get; init; }

    /// <summary>The manifest digests those references resolved to.</summary>
    public required IReadOnlyList<string> ManifestDigests { get; init; }

    /// <summary>registry/repository of each reference (what -KeepLatest groups by).</summary>
    public required IReadOnlyList<string> Repositories { get; init; }

    public required DateTimeOffset FirstUsed { get; init; }

    public required DateTimeOffset LastUsed { get; init; }

    /// <summary>Names of the VM records whose base disk is this image (same path, or a hard link to it).</summary>
    public required IReadOnlyList<string> UsedBy { get; init; }

    public bool InUse => UsedBy.Count > 0;

    public override string ToString() => References.Count > 0 ? $"{LayerDigest} ({string.Join(", ", References)})" : LayerDigest;
}
