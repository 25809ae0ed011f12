using System.Text.Json;
using System.Text.Json.Serialization;

namespace VmTools.Core.Registry;

/// <summary>An OCI content descriptor: what a manifest or index points at.</summary>
public sealed record OciDescriptor
{
    [JsonPropertyName("mediaType")] public required string MediaType { get; init; }
    [JsonPropertyName("digest")] public required string Digest { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    [JsonPropertyName("platform")] public OciPlatform? Platform { get; init; }
}

public sealed record OciPlatform
{
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("os")] public required string Os { get; init; }
    [JsonPropertyName("variant")] public string? Variant { get; init; }

    public override string ToString() => Os + "/" + Architecture + (Variant is null ? string.Empty : "/" + Variant);

    /// <summary>Parses <c>os/arch[/variant]</c>, e.g. linux/amd64.</summary>
    public static OciPlatform Parse(string text)
    {
        var p = text.Split('/');
        if (p.Length is < 2 or > 3 || p.Any(string.IsNullOrWhiteSpace))
        {
            throw new VmToolsException("ImagePlatformInvalid", FailureKind.InvalidArgument, $"'{text}' is not a platform (expected os/arch[/variant], e.g. linux/amd64).") { Target = text };
        }

        return new OciPlatform { Os = p[0], Architecture = p[1], Variant = p.Length == 3 ? p[2] : null };
    }

    /// <summary>This process's platform in OCI's architecture words.</summary>
    public static OciPlatform Current => new()
    {
        Os = "linux",
        Architecture = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => "amd64",
            System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
            System.Runtime.InteropServices.Architecture.Arm => "arm",
            System.Runtime.InteropServices.Architecture.S390x => "s390x",
            System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
            var a => a.ToString().ToLowerInvariant(),
        },
    };
}

/// <summary>An image manifest (OCI or Docker schema 2; the fields VmTools uses are the same).</summary>
public sealed record OciManifest
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; init; } = 2;
    [JsonPropertyName("mediaType")] public string? MediaType { get; init; }
    [JsonPropertyName("config")] public required OciDescriptor Config { get; init; }
    [JsonPropertyName("layers")] public required IReadOnlyList<OciDescriptor> Layers { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>An image index / manifest list: one manifest per platform.</summary>
public sealed record OciIndex
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; init; } = 2;
    [JsonPropertyName("mediaType")] public string? MediaType { get; init; }
    [JsonPropertyName("manifests")] public required IReadOnlyList<OciDescriptor> Manifests { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>The image config VmTools writes: platform, labels and the layer's uncompressed digest.</summary>
public sealed record OciImageConfig
{
    [JsonPropertyName("created")] public string? Created { get; init; }
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("os")] public required string Os { get; init; }
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("config")] public OciImageRuntimeConfig? Config { get; init; }
    [JsonPropertyName("rootfs")] public required OciRootFs RootFs { get; init; }
}

public sealed record OciImageRuntimeConfig
{
    [JsonPropertyName("Labels")] public IReadOnlyDictionary<string, string>? Labels { get; init; }
}

public sealed record OciRootFs
{
    [JsonPropertyName("type")] public string Type { get; init; } = "layers";
    [JsonPropertyName("diff_ids")] public required IReadOnlyList<string> DiffIds { get; init; }
}

/// <summary>One place for the serializer settings, so what we push is byte-stable run to run.</summary>
public static class OciJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
    };

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Options);

    public static T Deserialize<T>(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options) ?? throw new JsonException("null document");
        }
        catch (JsonException e)
        {
            throw new VmToolsException("RegistryManifestInvalid", FailureKind.InvalidData, $"The {what} is not valid JSON of the expected shape: {e.Message}", e);
        }
    }
}
