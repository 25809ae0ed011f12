using VmTools.Core.Images;
using VmTools.Core.Registry;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// A cache image named for a containerDisk volume: pinned by its manifest digest, so every node boots the
/// bytes that were cached (a tag could move between nodes' pulls). The image's layer already has
/// KubeVirt's containerDisk layout (<see cref="ContainerDiskLayout.DiskEntry"/>, uid 107).
/// </summary>
public sealed record ContainerDiskImage(string Image)
{
    /// <summary>
    /// The disk inside the image. Named explicitly because boot files may sit beside it in /disk, and
    /// KubeVirt only guesses the disk when the folder holds one file.
    /// </summary>
    public const string DiskPath = "/" + ContainerDiskLayout.DiskEntry;

    /// <summary>The repository's last path segment as a Kubernetes name ("debian" for registry/bases/debian@...), or null when it cannot be one.</summary>
    public string? RepositoryName
    {
        get
        {
            if (!ImageReference.TryParse(Image, out var parsed) || parsed is null) return null;
            var name = KubeVirtManifestBuilder.NameFor(parsed.Repository.Split('/')[^1]);
            return name.Length is > 0 and <= 63 ? name : null;
        }
    }

    public override string ToString() => Image;

    /// <summary>From a reference and the digest the cache recorded for it (Get-Qcow2Cache's Reference and Digest).</summary>
    public static ContainerDiskImage FromReference(string reference, string? digest)
    {
        if (!ImageReference.TryParse(reference, out var parsed) || parsed is null)
        {
            throw new VmToolsException("KubeVirtImageReferenceInvalid", FailureKind.InvalidArgument,
                $"'{UserInfo.Redact(reference)}' is not an image reference like registry/repository:tag.") { Target = UserInfo.Redact(reference) };
        }

        var pinned = digest ?? parsed.Digest;
        if (pinned is null || !ContentDigest.TryParse(pinned, out _))
        {
            throw new VmToolsException("KubeVirtImageDigestMissing", FailureKind.InvalidArgument,
                $"'{parsed}' has no manifest digest; a containerDisk must name the cached image by digest. Pass a Get-Qcow2Cache entry that was pulled or published (its Digest is set).")
            { Target = parsed.ToString() };
        }

        // The tag is dropped: it names what the digest was when cached, and a node must not resolve it again.
        return new ContainerDiskImage((parsed with { Tag = null }).WithDigest(pinned).ToString());
    }

    public static ContainerDiskImage FromCacheEntry(Qcow2CacheEntry entry) => FromReference(entry.Reference, entry.Digest);
}
