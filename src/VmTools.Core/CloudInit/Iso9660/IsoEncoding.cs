using System.Buffers.Binary;
using System.Text;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// ECMA-119 field encodings: both-byte-order integers (7.2.3, 7.3.3), the 7-byte directory record
/// date (9.1.5) and the 17-byte volume descriptor date (8.4.26.1).
/// </summary>
internal static class IsoEncoding
{
    public const int SectorSize = 2048;

    public static void BothEndian16(Span<byte> dest, int value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(dest, (ushort)value);
        BinaryPrimitives.WriteUInt16BigEndian(dest[2..], (ushort)value);
    }

    public static void BothEndian32(Span<byte> dest, long value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(dest, checked((uint)value));
        BinaryPrimitives.WriteUInt32BigEndian(dest[4..], checked((uint)value));
    }

    public static void RecordDate(Span<byte> dest, DateTimeOffset time)
    {
        var t = time.ToUniversalTime();
        dest[0] = (byte)(t.Year - 1900);
        dest[1] = (byte)t.Month;
        dest[2] = (byte)t.Day;
        dest[3] = (byte)t.Hour;
        dest[4] = (byte)t.Minute;
        dest[5] = (byte)t.Second;
        dest[6] = 0; // GMT offset in 15-minute units: always UTC
    }

    public static void VolumeDate(Span<byte> dest, DateTimeOffset? time)
    {
        // An unset date is sixteen '0' digits and a zero offset (8.4.26.1).
        var text = time is { } t ? t.ToUniversalTime().ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "00" : "0000000000000000";
        Encoding.ASCII.GetBytes(text, dest);
        dest[16] = 0;
    }

    /// <summary>A text field padded with spaces: ASCII for the primary descriptor, UCS-2 big endian for Joliet.</summary>
    public static void Text(Span<byte> dest, string value, bool ucs2)
    {
        if (ucs2)
        {
            for (var i = 0; i + 1 < dest.Length; i += 2)
            {
                var c = i / 2 < value.Length ? value[i / 2] : ' ';
                BinaryPrimitives.WriteUInt16BigEndian(dest[i..], c);
            }

            if (dest.Length % 2 == 1) dest[^1] = 0;
        }
        else
        {
            dest.Fill((byte)' ');
            Encoding.ASCII.GetBytes(value.AsSpan(0, Math.Min(value.Length, dest.Length)), dest);
        }
    }

    public static long SectorsFor(long bytes) => (bytes + SectorSize - 1) / SectorSize;
}
