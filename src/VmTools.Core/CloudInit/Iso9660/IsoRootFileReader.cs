using System.Buffers.Binary;
using System.Text;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// Reads one small file from the root directory of an ISO 9660 image, found by its Joliet or Rock
/// Ridge name: enough to learn which MAC a seed given only by path names in its network-config
/// (ours, genisoimage's, xorriso's or cloud-localds'). Anything that is not such an image gives null.
/// </summary>
public static class IsoRootFileReader
{
    private const int Sector = 2048;
    private const int MaxDirectoryBytes = 1 << 20;

    public static byte[]? Read(string imagePath, string name, int maxBytes = 1 << 20)
    {
        try
        {
            using var image = File.OpenRead(imagePath);
            byte[]? primary = null;
            for (var sector = 16; sector < 16 + 64; sector++)
            {
                var descriptor = ReadAt(image, (long)sector * Sector, Sector);
                if (descriptor is null || !descriptor.AsSpan(1, 5).SequenceEqual("CD001"u8)) return null;
                if (descriptor[0] == 255) break;
                if (descriptor[0] == 1) primary ??= descriptor;
                if (descriptor[0] == 2 && IsJoliet(descriptor) && Find(image, descriptor, name, joliet: true, maxBytes) is { } fromJoliet) return fromJoliet;
            }

            return primary is null ? null : Find(image, primary, name, joliet: false, maxBytes);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A supplementary descriptor whose escape sequence names UCS-2 level 1, 2 or 3.</summary>
    private static bool IsJoliet(byte[] d) => d[88] == 0x25 && d[89] == 0x2F && d[90] is 0x40 or 0x43 or 0x45;

    private static byte[]? Find(Stream image, byte[] descriptor, string name, bool joliet, int maxBytes)
    {
        var root = descriptor.AsSpan(156, 34);
        var extent = BinaryPrimitives.ReadUInt32LittleEndian(root[2..]);
        var size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(root[10..]), MaxDirectoryBytes);
        var directory = ReadAt(image, (long)extent * Sector, size);
        if (directory is null) return null;
        var pos = 0;
        while (pos < directory.Length)
        {
            int length = directory[pos];
            if (length == 0)
            {
                pos = (pos / Sector + 1) * Sector; // records never cross a sector; the rest is padding
                continue;
            }

            if (pos + length > directory.Length || length < 34) return null;
            var record = directory.AsSpan(pos, length);
            var isDirectory = (record[25] & 2) != 0;
            int nameLength = record[32];
            if (!isDirectory && 33 + nameLength <= length)
            {
                var recordName = joliet
                    ? Encoding.BigEndianUnicode.GetString(record.Slice(33, nameLength))
                    : RockRidgeName(record[(33 + nameLength + (nameLength % 2 == 0 ? 1 : 0))..]);
                if (recordName is not null && StripVersion(recordName) == name)
                {
                    var dataSize = BinaryPrimitives.ReadUInt32LittleEndian(record[10..]);
                    if (dataSize > maxBytes) return null;
                    return ReadAt(image, (long)BinaryPrimitives.ReadUInt32LittleEndian(record[2..]) * Sector, (int)dataSize);
                }
            }

            pos += length;
        }

        return null;
    }

    /// <summary>The name in a Rock Ridge NM entry of a record's system use area (no continuation areas: seed names are short).</summary>
    private static string? RockRidgeName(ReadOnlySpan<byte> systemUse)
    {
        var name = new StringBuilder();
        var found = false;
        var pos = 0;
        while (pos + 4 <= systemUse.Length)
        {
            int length = systemUse[pos + 2];
            if (length < 4 || pos + length > systemUse.Length) break;
            if (systemUse[pos] == 'N' && systemUse[pos + 1] == 'M' && length >= 5)
            {
                name.Append(Encoding.UTF8.GetString(systemUse.Slice(pos + 5, length - 5)));
                found = true;
            }

            pos += length;
        }

        return found ? name.ToString() : null;
    }

    private static string StripVersion(string name) => name.EndsWith(";1", StringComparison.Ordinal) ? name[..^2] : name;

    private static byte[]? ReadAt(Stream image, long offset, int count)
    {
        if (offset + count > image.Length) return null;
        image.Position = offset;
        var buffer = new byte[count];
        image.ReadExactly(buffer);
        return buffer;
    }
}
