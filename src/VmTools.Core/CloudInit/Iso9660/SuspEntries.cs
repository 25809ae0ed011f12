using System.Text;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// System Use Sharing Protocol 1.12 and Rock Ridge 1.12 entries, as recorded in a directory
/// record's System Use field: SP (SUSP in use), CE (continuation area), ER (which extension),
/// PX (POSIX mode, links, owner, serial), TF (timestamps) and NM (the real name).
/// </summary>
internal static class SuspEntries
{
    public const int ContinuationLength = 28;

    // RRIP 1.12 section 5.5: the extension identifier, descriptor and source it registers.
    private const string ExtensionId = "IEEE_1282";
    private const string ExtensionDescriptor = "THE IEEE 1282 PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS.";
    private const string ExtensionSource = "PLEASE CONTACT THE IEEE STANDARDS DEPARTMENT, PISCATAWAY, NJ, USA FOR THE 1282 SPECIFICATION.";

    public static byte[] SharingProtocol() => new byte[] { (byte)'S', (byte)'P', 7, 1, 0xBE, 0xEF, 0 };

    public static byte[] ExtensionReference()
    {
        var id = Encoding.ASCII.GetBytes(ExtensionId);
        var des = Encoding.ASCII.GetBytes(ExtensionDescriptor);
        var src = Encoding.ASCII.GetBytes(ExtensionSource);
        var e = new byte[8 + id.Length + des.Length + src.Length];
        e[0] = (byte)'E'; e[1] = (byte)'R'; e[2] = (byte)e.Length; e[3] = 1;
        e[4] = (byte)id.Length; e[5] = (byte)des.Length; e[6] = (byte)src.Length; e[7] = 1;
        id.CopyTo(e, 8);
        des.CopyTo(e, 8 + id.Length);
        src.CopyTo(e, 8 + id.Length + des.Length);
        return e;
    }

    public static byte[] Continuation(long block, int offset, int length)
    {
        var e = new byte[ContinuationLength];
        e[0] = (byte)'C'; e[1] = (byte)'E'; e[2] = ContinuationLength; e[3] = 1;
        IsoEncoding.BothEndian32(e.AsSpan(4), block);
        IsoEncoding.BothEndian32(e.AsSpan(12), offset);
        IsoEncoding.BothEndian32(e.AsSpan(20), length);
        return e;
    }

    public static byte[] PosixAttributes(IsoNode node, int links)
    {
        const int S_IFDIR = 0x4000, S_IFREG = 0x8000;
        var e = new byte[44];
        e[0] = (byte)'P'; e[1] = (byte)'X'; e[2] = 44; e[3] = 1;
        var mode = (int)node.Mode | (node is IsoDirectoryNode ? S_IFDIR : S_IFREG);
        IsoEncoding.BothEndian32(e.AsSpan(4), mode);
        IsoEncoding.BothEndian32(e.AsSpan(12), links);
        IsoEncoding.BothEndian32(e.AsSpan(20), 0); // uid: root, as the guest's setup script expects
        IsoEncoding.BothEndian32(e.AsSpan(28), 0); // gid
        IsoEncoding.BothEndian32(e.AsSpan(36), node.SerialNumber);
        return e;
    }

    public static byte[] Timestamps(DateTimeOffset time)
    {
        // Modify, access and attribute-change times, 7-byte form (RRIP 4.1.6).
        var e = new byte[5 + 3 * 7];
        e[0] = (byte)'T'; e[1] = (byte)'F'; e[2] = (byte)e.Length; e[3] = 1; e[4] = 0x02 | 0x04 | 0x08;
        for (var i = 0; i < 3; i++) IsoEncoding.RecordDate(e.AsSpan(5 + i * 7), time);
        return e;
    }

    public static byte[] AlternateName(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var e = new byte[5 + bytes.Length];
        e[0] = (byte)'N'; e[1] = (byte)'M'; e[2] = (byte)e.Length; e[3] = 1; e[4] = 0;
        bytes.CopyTo(e, 5);
        return e;
    }
}
