namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>An ECMA-119 directory record (9.1). The System Use field carries Rock Ridge entries.</summary>
internal readonly record struct DirectoryRecord(byte[] Identifier, long Extent, long DataLength, bool IsDirectory, DateTimeOffset Time, byte[] SystemUse)
{
    public const int FixedLength = 33;
    public const int MaxLength = 255;

    public static readonly byte[] Self = { 0 };
    public static readonly byte[] ParentOf = { 1 };

    /// <summary>Fixed part, identifier, the pad byte that keeps the System Use field on an even offset, then System Use.</summary>
    public static int BaseLength(int identifierLength) => FixedLength + identifierLength + (identifierLength % 2 == 0 ? 1 : 0);

    public int Length
    {
        get
        {
            var n = BaseLength(Identifier.Length) + SystemUse.Length;
            return n + (n % 2); // SUSP 5.3: records have even length
        }
    }

    public int WriteTo(Span<byte> dest)
    {
        var length = Length;
        dest[..length].Clear();
        dest[0] = (byte)length;
        IsoEncoding.BothEndian32(dest[2..], Extent);
        IsoEncoding.BothEndian32(dest[10..], DataLength);
        IsoEncoding.RecordDate(dest[18..], Time);
        dest[25] = (byte)(IsDirectory ? 0x02 : 0x00);
        IsoEncoding.BothEndian16(dest[28..], 1); // volume sequence number
        dest[32] = (byte)Identifier.Length;
        Identifier.CopyTo(dest[33..]);
        SystemUse.CopyTo(dest[BaseLength(Identifier.Length)..]);
        return length;
    }
}
