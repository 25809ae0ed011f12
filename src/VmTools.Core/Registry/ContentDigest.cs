using System.Security.Cryptography;

namespace VmTools.Core.Registry;

/// <summary>An OCI content digest. Only sha256 is produced or accepted: it is what every registry serves.</summary>
public readonly record struct ContentDigest(string Hex)
{
    public const string Algorithm = "sha256";

    public override string ToString() => Algorithm + ":" + Hex;

    public static ContentDigest Parse(string text)
    {
        if (!TryParse(text, out var d))
        {
            throw new VmToolsException("RegistryDigestInvalid", FailureKind.InvalidData, $"'{text}' is not a sha256 digest.") { Target = text };
        }

        return d;
    }

    public static bool TryParse(string? text, out ContentDigest digest)
    {
        digest = default;
        if (text is null || !text.StartsWith("sha256:", StringComparison.Ordinal) || text.Length != 7 + 64) return false;
        foreach (var c in text.AsSpan(7))
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return false;
        }

        digest = new ContentDigest(text[7..]);
        return true;
    }

    public static ContentDigest Of(ReadOnlySpan<byte> content) => new(Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant());

    public static ContentDigest FromHash(byte[] sha256) => new(Convert.ToHexString(sha256).ToLowerInvariant());
}
