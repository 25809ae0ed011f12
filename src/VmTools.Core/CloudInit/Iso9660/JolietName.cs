using System.Text;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// Joliet identifiers: UCS-2 big endian, at most 64 characters, none of <c>* / : ; ? \</c> or
/// control characters. Like genisoimage, files carry no <c>;1</c> version suffix: isoinfo matches
/// Joliet paths literally and the Linux kernel accepts either form.
/// Characters outside the Basic Multilingual Plane have no UCS-2 form, so they are rejected.
/// </summary>
internal static class JolietName
{
    public const int MaxLength = 64;

    /// <summary>Why <paramref name="name"/> cannot be recorded, or null when it can.</summary>
    public static string? Problem(string name)
    {
        if (name.Length == 0) return "an empty name";
        if (name is "." or "..") return $"'{name}' is reserved";
        if (name.Length > MaxLength) return $"it is {name.Length} characters long; Joliet holds at most {MaxLength}";
        foreach (var c in name)
        {
            if (c < 0x20 || c is '*' or '/' or ':' or ';' or '?' or '\\') return $"it contains the character U+{(int)c:X4}, which Joliet forbids";
            if (char.IsSurrogate(c)) return "it contains a character outside the Basic Multilingual Plane, which UCS-2 cannot hold";
            if (c == '\uFFFD') return "it is not valid UTF-8";
        }

        return null;
    }

    public static byte[] Encode(string name) => Encoding.BigEndianUnicode.GetBytes(name);
}
