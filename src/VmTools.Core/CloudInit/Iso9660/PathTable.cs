using System.Buffers.Binary;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// The path table (ECMA-119 9.4): every directory in breadth-first order with its parent's number,
/// recorded twice, little endian (type L) and big endian (type M).
/// </summary>
internal static class PathTable
{
    /// <summary>A class, not a struct: List and LINQ code over a module value type cannot be precompiled (ReadyToRun) and is JIT-compiled on a first call.</summary>
    public sealed record Entry(byte[] Identifier, int ParentNumber, long Extent);

    public static int Size(IReadOnlyList<Entry> entries)
    {
        var size = 0;
        foreach (var e in entries) size += 8 + e.Identifier.Length + (e.Identifier.Length % 2);
        return size;
    }

    public static byte[] Encode(IReadOnlyList<Entry> entries, bool bigEndian)
    {
        var bytes = new byte[Size(entries)];
        var span = bytes.AsSpan();
        var at = 0;
        foreach (var e in entries)
        {
            span[at] = (byte)e.Identifier.Length;
            if (bigEndian)
            {
                BinaryPrimitives.WriteUInt32BigEndian(span[(at + 2)..], (uint)e.Extent);
                BinaryPrimitives.WriteUInt16BigEndian(span[(at + 6)..], (ushort)e.ParentNumber);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 2)..], (uint)e.Extent);
                BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 6)..], (ushort)e.ParentNumber);
            }

            e.Identifier.CopyTo(span[(at + 8)..]);
            at += 8 + e.Identifier.Length + (e.Identifier.Length % 2);
        }

        return bytes;
    }
}
