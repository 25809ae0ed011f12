using VmTools.Core.Registry;

namespace VmTools.Core.Images;

/// <summary>What Save-Qcow2Cache publishes and where.</summary>
public sealed record PublishRequest(string DiskPath, ImageReference Repository, IReadOnlyList<string> Tags, SourceRevision Revision)
{
    public IReadOnlyList<BootFile> BootFiles { get; init; } = Array.Empty<BootFile>();

    public LayerCompression Compression { get; init; } = LayerCompression.None;

    public OciPlatform Platform { get; init; } = OciPlatform.Current;

    /// <summary>Publish as one platform of a multi-arch index (created or updated), rather than a plain manifest.</summary>
    public bool AsIndex { get; init; }

    /// <summary>The image's creation time; SOURCE_DATE_EPOCH or the disk's mtime keep pushes reproducible.</summary>
    public DateTimeOffset Created { get; init; }

    public bool RegistryEnabled { get; init; } = true;

    public RegistryClientOptions ClientOptions { get; init; } = new();
}

/// <summary>What a publish did: the digest every tag now points at and how many bytes crossed the wire.</summary>
public sealed record PublishResult
{
    public required string Reference { get; init; }
    public required IReadOnlyList<string> Tags { get; init; }
    public required string Digest { get; init; }
    public required string LayerDigest { get; init; }
    public long LayerSize { get; init; }
    public long BytesUploaded { get; init; }
    public int BlobsSkipped { get; init; }
    public int BlobsMounted { get; init; }
    public string? Platform { get; init; }
    public required string Destination { get; init; }
    public TimeSpan Duration { get; init; }
}
