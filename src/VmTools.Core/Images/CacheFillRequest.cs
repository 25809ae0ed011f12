using VmTools.Core.Registry;

namespace VmTools.Core.Images;

/// <summary>
/// What Get-Qcow2Cache hands the cache after its -Build made a base on a miss: the disk (and the kernel/initrd
/// it boots with directly), the tags the miss was looked up by, and how the result is to be published.
/// </summary>
public sealed record CacheFillRequest(string DiskPath, ImageReference Repository, IReadOnlyList<string> Tags, SourceRevision Revision)
{
    public IReadOnlyList<BootFile> BootFiles { get; init; } = Array.Empty<BootFile>();

    /// <summary>How long the build ran; the entry's Duration counts it.</summary>
    public TimeSpan BuildTime { get; init; }

    /// <summary>
    /// The tags were the revision's defaults (commit, then latest) rather than one the caller named: a build
    /// from a dirty tree then publishes only the commit tag, so latest keeps pointing at a committed base.
    /// </summary>
    public bool TagsFromRevision { get; init; }

    /// <summary>False: the build is recorded and answered from where it was built, nothing is published.</summary>
    public bool Publish { get; init; } = true;

    public OciPlatform Platform { get; init; } = OciPlatform.Current;

    /// <summary>The image's creation time; SOURCE_DATE_EPOCH or the disk's mtime keep pushes reproducible.</summary>
    public DateTimeOffset Created { get; init; }

    public bool RegistryEnabled { get; init; } = true;

    public RegistryClientOptions ClientOptions { get; init; } = new();
}
