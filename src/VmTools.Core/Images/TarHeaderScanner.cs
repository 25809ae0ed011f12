using System.Text;

namespace VmTools.Core.Images;

/// <summary>
/// Reads just enough tar headers from the first bytes of a layer to learn where one file's data sits,
/// so the bytes of an uncompressed layer can be ranged straight into the disk file. Understands ustar,
/// PAX (path, size) and GNU long names. The full layer is still validated by System.Formats.Tar afterwards.
/// </summary>
internal static class TarHeaderScanner
{
    public sealed record Located(string Name, long DataOffset, long Size);

    /// <summary>Walks headers in <paramref name="prefix"/> and returns the first regular file accepted by <paramref name="wanted"/>, or null.</summary>
    public static Located? FindFile(ReadOnlySpan<byte> prefix, Func<string, bool> wanted)
    {
        long offset = 0;
        string? paxPath = null, longName = null;
        long? paxSize = null;
        while (offset + TarHeaderWriter.Block <= prefix.Length)
        {
            var h = prefix.Slice((int)offset, TarHeaderWriter.Block);
            if (h.IndexOfAnyExcept((byte)0) < 0) return null; // end of archive
            if (!ChecksumOk(h)) return null;
            var type = (char)h[156];
            var size = ParseSize(h[124..136]);
            if (size < 0) return null;
            var dataOffset = offset + TarHeaderWriter.Block;
            var next = dataOffset + TarHeaderWriter.Padded(size);
            switch (type)
            {
                case 'x':
                case 'L':
                    if (next > prefix.Length) return null;
                    var data = prefix.Slice((int)dataOffset, (int)size);
                    if (type == 'L') longName = Encoding.UTF8.GetString(data).TrimEnd('\0');
                    else ParsePax(data, ref paxPath, ref paxSize);
                    offset = next;
                    continue;
                case 'g':
                    offset = next;
                    continue;
            }

            var name = longName ?? paxPath ?? Name(h);
            var realSize = paxSize ?? size;
            paxPath = null; longName = null; paxSize = null;
            next = dataOffset + TarHeaderWriter.Padded(realSize);
            if ((type == '0' || type == '\0' || type == '7') && wanted(Normalize(name))) return new Located(Normalize(name), dataOffset, realSize);
            offset = next;
        }

        return null;
    }

    internal static string Normalize(string name)
    {
        var n = name.Replace('\\', '/');
        while (n.StartsWith("./", StringComparison.Ordinal)) n = n[2..];
        return n.TrimStart('/');
    }

    private static string Name(ReadOnlySpan<byte> h)
    {
        var name = Field(h[..100]);
        var magic = Encoding.ASCII.GetString(h[257..262]);
        var prefix = magic == "ustar" ? Field(h[345..500]) : string.Empty;
        return prefix.Length > 0 ? prefix + "/" + name : name;
    }

    private static string Field(ReadOnlySpan<byte> f)
    {
        var end = f.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? f : f[..end]);
    }

    private static long ParseSize(ReadOnlySpan<byte> f)
    {
        if ((f[0] & 0x80) != 0)
        {
            long v = 0;
            for (var i = 1; i < f.Length; i++) v = (v << 8) | f[i];
            return v;
        }

        var s = Field(f).Trim(' ', '\0');
        if (s.Length == 0) return 0;
        try { return Convert.ToInt64(s, 8); } catch (FormatException) { return -1; }
    }

    private static bool ChecksumOk(ReadOnlySpan<byte> h)
    {
        var stored = Field(h[148..156]).Trim(' ', '\0');
        if (stored.Length == 0) return false;
        long want;
        try { want = Convert.ToInt64(stored, 8); } catch (FormatException) { return false; }
        long sum = 0;
        for (var i = 0; i < h.Length; i++) sum += i is >= 148 and < 156 ? ' ' : h[i];
        return sum == want;
    }

    private static void ParsePax(ReadOnlySpan<byte> data, ref string? path, ref long? size)
    {
        var text = Encoding.UTF8.GetString(data);
        var i = 0;
        while (i < text.Length)
        {
            var sp = text.IndexOf(' ', i);
            if (sp < 0 || !int.TryParse(text.AsSpan(i, sp - i), out var len) || len <= 0 || i + len > text.Length) return;
            var record = text.Substring(sp + 1, len - (sp - i) - 2);
            var eq = record.IndexOf('=');
            if (eq > 0)
            {
                var key = record[..eq];
                var value = record[(eq + 1)..];
                if (key == "path") path = value;
                else if (key == "size" && long.TryParse(value, out var s)) size = s;
            }

            i += len;
        }
    }
}
