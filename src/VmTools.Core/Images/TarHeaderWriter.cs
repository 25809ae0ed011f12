using System.Text;

namespace VmTools.Core.Images;

/// <summary>
/// Writes POSIX ustar headers byte-for-byte deterministically (no clock, no user names), with a PAX
/// extended header when a size does not fit the octal field. Readers use System.Formats.Tar; the writer is
/// ours because the layout (data offsets, total size) must be known before a single byte is streamed.
/// </summary>
internal static class TarHeaderWriter
{
    public const int Block = 512;
    private const long MaxOctalSize = (1L << 33) - 1; // 11 octal digits

    public static long Padded(long size) => (size + Block - 1) / Block * Block;

    /// <summary>Bytes the header(s) for an entry of this size occupy.</summary>
    public static int HeaderBytes(long size) => size > MaxOctalSize ? 3 * Block : Block;

    public static byte[] Header(string name, char type, long size, int mode, int uid, int gid, long mtime, string? linkName = null)
    {
        if (Encoding.UTF8.GetByteCount(name) > 100) throw new ArgumentException($"Entry name '{name}' is longer than 100 bytes.", nameof(name));
        using var ms = new MemoryStream();
        if (size > MaxOctalSize)
        {
            var record = PaxRecord("size", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var pax = Encoding.UTF8.GetBytes(record);
            ms.Write(Ustar("PaxHeaders/" + Path.GetFileName(name), 'x', pax.Length, 0x1a4, uid, gid, mtime, null));
            var body = new byte[Block];
            pax.CopyTo(body, 0);
            ms.Write(body);
            ms.Write(Ustar(name, type, 0, mode, uid, gid, mtime, linkName));
        }
        else
        {
            ms.Write(Ustar(name, type, size, mode, uid, gid, mtime, linkName));
        }

        return ms.ToArray();
    }

    private static string PaxRecord(string key, string value)
    {
        // "<len> key=value\n" where len counts itself.
        var rest = $" {key}={value}\n";
        var len = rest.Length + 1;
        while ((len.ToString(System.Globalization.CultureInfo.InvariantCulture) + rest).Length != len) len++;
        return len.ToString(System.Globalization.CultureInfo.InvariantCulture) + rest;
    }

    private static byte[] Ustar(string name, char type, long size, int mode, int uid, int gid, long mtime, string? linkName)
    {
        var h = new byte[Block];
        Put(h, 0, 100, name);
        Octal(h, 100, 8, mode);
        Octal(h, 108, 8, uid);
        Octal(h, 116, 8, gid);
        Octal(h, 124, 12, size);
        Octal(h, 136, 12, mtime);
        h[156] = (byte)type;
        if (linkName is not null) Put(h, 157, 100, linkName);
        Put(h, 257, 6, "ustar");
        Put(h, 263, 2, "00");
        Octal(h, 329, 8, 0);
        Octal(h, 337, 8, 0);
        for (var i = 148; i < 156; i++) h[i] = (byte)' ';
        var sum = 0;
        foreach (var b in h) sum += b;
        var chk = Convert.ToString(sum, 8).PadLeft(6, '0');
        Put(h, 148, 6, chk);
        h[154] = 0;
        h[155] = (byte)' ';
        return h;
    }

    private static void Put(byte[] h, int offset, int length, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Array.Copy(bytes, 0, h, offset, Math.Min(bytes.Length, length));
    }

    private static void Octal(byte[] h, int offset, int length, long value)
    {
        var s = Convert.ToString(value, 8).PadLeft(length - 1, '0');
        Put(h, offset, length - 1, s);
        h[offset + length - 1] = 0;
    }
}
