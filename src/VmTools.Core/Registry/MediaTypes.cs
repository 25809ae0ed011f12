namespace VmTools.Core.Registry;

/// <summary>The media types VmTools reads and writes (OCI image spec and Docker's schema 2).</summary>
public static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";

    /// <summary>What a manifest request accepts; registries answer 404 for OCI manifests unless asked for them.</summary>
    public static readonly string[] ManifestAccept = { OciManifest, OciIndex, DockerManifest, DockerManifestList };

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    public static LayerCompression CompressionOf(string mediaType) => mediaType switch
    {
        OciLayerTar or DockerLayerTar => LayerCompression.None,
        OciLayerGzip or DockerLayerGzip => LayerCompression.Gzip,
        OciLayerZstd => LayerCompression.Zstd,
        _ => throw new VmToolsException("RegistryUnsupportedMediaType", FailureKind.InvalidData,
            $"Layer media type '{mediaType}' is not a tar layer VmTools can read (tar, tar+gzip, tar+zstd).") { Target = mediaType },
    };
}

public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
}
