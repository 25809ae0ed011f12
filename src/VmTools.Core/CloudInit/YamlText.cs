using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace VmTools.Core.CloudInit;

/// <summary>
/// Just enough YAML for cloud-init: every scalar is written double-quoted with JSON escapes (a JSON
/// string is a valid YAML double-quoted scalar), so no value can be read back as a number, a
/// boolean, a comment or a document marker. Scripts go in literal blocks for readability when
/// that round-trips exactly.
/// </summary>
internal static class YamlText
{
    /// <summary>
    /// The value as a JSON string. Written with Utf8JsonWriter (what JsonSerializer uses for a string)
    /// rather than through JsonSerializer, whose first use builds reflection metadata and every
    /// built-in converter: ~50 ms of a one-cmdlet CI step.
    /// </summary>
    public static string Quote(string value)
    {
        // Printable ASCII other than '"' and '\' is written as it is by the encoder: skip its set-up (~10 ms
        // of a one-cmdlet CI step) for the common case of host names, ids, paths and keys.
        if (IsPlainAscii(value)) return "\"" + value + "\"";
        return QuoteWithEncoder(value);
    }

    internal static string QuoteWithEncoder(string value)
    {
        var buffer = new ArrayBufferWriter<byte>(value.Length + 2);
        var options = new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using (var writer = new Utf8JsonWriter(buffer, options)) writer.WriteStringValue(value);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static bool IsPlainAscii(string value)
    {
        foreach (var c in value)
        {
            if (c < ' ' || c > '~' || c == '"' || c == '\\') return false;
        }

        return true;
    }

    /// <summary>The value as a literal block (<c>|</c>) indented by <paramref name="indent"/> spaces, or quoted when a block could not hold it exactly.</summary>
    public static string Block(string value, int indent)
    {
        var lines = value.Split('\n');
        var fitsBlock = value.EndsWith('\n') && !value.EndsWith("\n\n", StringComparison.Ordinal) && value.Length > 1
            && !char.IsWhiteSpace(value[0])
            && value.All(c => c == '\n' || c == '\t' || (c >= ' ' && c != '\u007f' && c != '\uFEFF' && !char.IsSurrogate(c)))
            && lines.All(l => l.Length == 0 || !char.IsWhiteSpace(l[^1]));
        if (!fitsBlock) return Quote(value);
        var pad = new string(' ', indent);
        var sb = new StringBuilder("|\n");
        foreach (var line in lines.Take(lines.Length - 1)) sb.Append(line.Length == 0 ? string.Empty : pad).Append(line).Append('\n');
        return sb.ToString().TrimEnd('\n');
    }
}
