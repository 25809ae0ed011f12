using System.Text.Json;

namespace VmTools.Core.Registry;

/// <summary>A manifest or index exactly as the registry served it, with the digest of those bytes.</summary>
public sealed record ManifestDocument(string Digest, string MediaType, byte[] Bytes)
{
    public bool IsIndex => MediaTypes.IsIndex(MediaType);

    public OciManifest AsManifest() => OciJson.Deserialize<OciManifest>(Bytes, "image manifest");

    public OciIndex AsIndex() => OciJson.Deserialize<OciIndex>(Bytes, "image index");

    internal static string? DeclaredMediaType(byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("mediaType", out var m) ? m.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
