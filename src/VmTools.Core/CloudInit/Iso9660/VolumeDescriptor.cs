using System.Buffers.Binary;
using System.Text;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// The primary volume descriptor (ECMA-119 8.4), the Joliet supplementary descriptor (type 2 with
/// the UCS-2 level 3 escape sequence <c>%/E</c>) and the set terminator (8.3).
/// </summary>
internal static class VolumeDescriptor
{
    public static byte[] Primary(VolumeFields fields, DirectoryRecord root, PathTableLocation paths) => Describe(1, fields, root, paths, joliet: false);

    public static byte[] Joliet(VolumeFields fields, DirectoryRecord root, PathTableLocation paths) => Describe(2, fields, root, paths, joliet: true);

    public static byte[] Terminator()
    {
        var s = new byte[IsoEncoding.SectorSize];
        s[0] = 255;
        Encoding.ASCII.GetBytes("CD001", s.AsSpan(1));
        s[6] = 1;
        return s;
    }

    private static byte[] Describe(byte type, VolumeFields fields, DirectoryRecord root, PathTableLocation paths, bool joliet)
    {
        var s = new byte[IsoEncoding.SectorSize];
        var d = s.AsSpan();
        d[0] = type;
        Encoding.ASCII.GetBytes("CD001", d[1..]);
        d[6] = 1;
        IsoEncoding.Text(d.Slice(8, 32), fields.SystemId, joliet);
        IsoEncoding.Text(d.Slice(40, 32), fields.VolumeId, joliet);
        IsoEncoding.BothEndian32(d[80..], fields.TotalSectors);
        if (joliet)
        {
            d[88] = (byte)'%'; d[89] = (byte)'/'; d[90] = (byte)'E';
        }

        IsoEncoding.BothEndian16(d[120..], 1); // volume set size
        IsoEncoding.BothEndian16(d[124..], 1); // volume sequence number
        IsoEncoding.BothEndian16(d[128..], IsoEncoding.SectorSize);
        IsoEncoding.BothEndian32(d[132..], paths.Size);
        BinaryPrimitives.WriteUInt32LittleEndian(d[140..], (uint)paths.LittleEndianSector);
        BinaryPrimitives.WriteUInt32BigEndian(d[148..], (uint)paths.BigEndianSector);
        root.WriteTo(d[156..]);
        IsoEncoding.Text(d.Slice(190, 128), string.Empty, joliet); // volume set
        IsoEncoding.Text(d.Slice(318, 128), string.Empty, joliet); // publisher
        IsoEncoding.Text(d.Slice(446, 128), string.Empty, joliet); // data preparer
        IsoEncoding.Text(d.Slice(574, 128), fields.ApplicationId, joliet);
        IsoEncoding.Text(d.Slice(702, 37), string.Empty, joliet); // copyright file
        IsoEncoding.Text(d.Slice(739, 37), string.Empty, joliet); // abstract file
        IsoEncoding.Text(d.Slice(776, 37), string.Empty, joliet); // bibliographic file
        IsoEncoding.VolumeDate(d[813..], fields.Time); // creation
        IsoEncoding.VolumeDate(d[830..], fields.Time); // modification
        IsoEncoding.VolumeDate(d[847..], null); // expiration
        IsoEncoding.VolumeDate(d[864..], fields.Time); // effective
        d[881] = 1; // file structure version
        return s;
    }
}

internal sealed record VolumeFields(string VolumeId, string SystemId, string ApplicationId, long TotalSectors, DateTimeOffset Time);

internal readonly record struct PathTableLocation(int Size, long LittleEndianSector, long BigEndianSector);
