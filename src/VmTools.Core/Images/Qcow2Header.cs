using System.Buffers.Binary;
using System.Text;

namespace VmTools.Core.Images;

/// <summary>
/// The fields of a qcow2 header VmTools relies on (big-endian, per qemu's docs/interop/qcow2.txt).
/// A cached base must be self-contained: a backing file or an external data file would make qemu
/// open a host path the image names, and a feature bit VmTools does not know could mean the same.
/// </summary>
public sealed record Qcow2Header(int Version, long VirtualSize, int ClusterBits, string? BackingFile)
{
    public const string UnsafeErrorId = "Qcow2ImageUnsafe";

    private const uint Magic = 0x514649fb; // "QFI\xfb"
    private const int V2HeaderLength = 72;
    private const uint ExternalDataFileExtension = 0x44415441; // "DATA"

    // Incompatible feature bits (qcow2.txt): 0 dirty, 1 corrupt, 2 external data file, 3 compression
    // type, 4 extended L2 entries. Only those that change nothing outside the file are accepted.
    private const int CorruptBit = 1;
    private const int ExternalDataFileBit = 2;
    private const ulong AcceptedIncompatibleFeatures = (1UL << 0) | (1UL << 3) | (1UL << 4);

    /// <summary>Incompatible feature bits (version 3; 0 for version 2).</summary>
    public ulong IncompatibleFeatures { get; init; }

    /// <summary>The external data file named by header extension 0x44415441, when there is one.</summary>
    public string? ExternalDataFile { get; init; }

    public static Qcow2Header Read(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        return Read(fs, path);
    }

    /// <summary>Reads the header; anything that is not a qcow2 version 2 or 3 is <see cref="UnsafeErrorId"/>.</summary>
    public static Qcow2Header Read(Stream stream, string name)
    {
        Span<byte> h = stackalloc byte[104];
        var read = stream.ReadAtLeast(h, h.Length, throwOnEndOfStream: false);
        if (read < V2HeaderLength || BinaryPrimitives.ReadUInt32BigEndian(h) != Magic)
        {
            // A raw disk under a qcow2 name would have its format guessed from bytes the guest writes,
            // and a guest-written qcow2 header can name any host file as its backing file.
            throw Unsafe(name, "is not a qcow2 image (no QFI magic); a raw or other-format disk under a qcow2 name is refused");
        }

        var version = (int)BinaryPrimitives.ReadUInt32BigEndian(h[4..]);
        if (version is not (2 or 3) || (version == 3 && read < 104))
        {
            throw Unsafe(name, $"is qcow2 version {version}{(version == 3 ? " with a truncated header" : string.Empty)}; only complete version 2 and 3 headers are known");
        }

        var backingOffset = BinaryPrimitives.ReadUInt64BigEndian(h[8..]);
        var backingSize = BinaryPrimitives.ReadUInt32BigEndian(h[16..]);
        var clusterBits = (int)BinaryPrimitives.ReadUInt32BigEndian(h[20..]);
        var size = (long)BinaryPrimitives.ReadUInt64BigEndian(h[24..]);
        if (clusterBits is < 9 or > 21) throw Unsafe(name, $"has cluster_bits {clusterBits}, outside qcow2's 9..21");

        var incompatible = version == 3 ? BinaryPrimitives.ReadUInt64BigEndian(h[72..]) : 0;
        var headerLength = version == 3 ? BinaryPrimitives.ReadUInt32BigEndian(h[100..]) : V2HeaderLength;
        var clusterSize = 1L << clusterBits;
        if (headerLength < (version == 3 ? 104 : V2HeaderLength) || headerLength >= clusterSize) throw Unsafe(name, $"has header_length {headerLength}, outside its first cluster");

        string? backing = null;
        if (backingOffset != 0)
        {
            var buf = new byte[Math.Min(backingSize, 1023u)];
            stream.Seek((long)Math.Min(backingOffset, long.MaxValue), SeekOrigin.Begin);
            var n = stream.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
            backing = Encoding.UTF8.GetString(buf, 0, n);
        }

        return new Qcow2Header(version, size, clusterBits, backing)
        {
            IncompatibleFeatures = incompatible,
            ExternalDataFile = ReadExternalDataFile(stream, name, headerLength, clusterSize),
        };
    }

    /// <summary>
    /// Reads the header and refuses an image that would make qemu open anything but itself: a backing
    /// file, an external data file (feature bit or header extension), an incompatible feature bit
    /// VmTools does not know, a corrupt mark, or content that is not qcow2 at all.
    /// </summary>
    public static Qcow2Header RequireSelfContained(string path, string? displayName = null)
    {
        var name = displayName ?? path;
        Qcow2Header header;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None))
        {
            header = Read(fs, name);
        }

        if (header.BackingFile is not null)
        {
            throw Unsafe(name, $"has a backing file ('{header.BackingFile}'); a cached base must be standalone. Flatten it first: qemu-img convert -O qcow2 overlay.qcow2 flat.qcow2");
        }

        if ((header.IncompatibleFeatures & (1UL << ExternalDataFileBit)) != 0 || header.ExternalDataFile is not null)
        {
            throw Unsafe(name, $"keeps its data in an external data file{(header.ExternalDataFile is { } file ? $" ('{file}')" : string.Empty)} (incompatible feature bit {ExternalDataFileBit}); a cached base must hold its own data");
        }

        if ((header.IncompatibleFeatures & (1UL << CorruptBit)) != 0)
        {
            throw Unsafe(name, $"is marked corrupt (incompatible feature bit {CorruptBit}); repair it with qemu-img check -r all");
        }

        var unknown = header.IncompatibleFeatures & ~AcceptedIncompatibleFeatures;
        if (unknown != 0)
        {
            var bits = string.Join(", ", Enumerable.Range(0, 64).Where(b => (unknown & (1UL << b)) != 0));
            throw Unsafe(name, $"sets incompatible feature bit(s) {bits}, which VmTools does not know; it cannot tell what they make qemu open");
        }

        return header;
    }

    /// <summary>Walks the header extensions (type, length, data padded to 8) in the first cluster.</summary>
    private static string? ReadExternalDataFile(Stream stream, string name, uint headerLength, long clusterSize)
    {
        stream.Seek(headerLength, SeekOrigin.Begin);
        var area = new byte[Math.Min(clusterSize - headerLength, 1L << 16)];
        var n = stream.ReadAtLeast(area, area.Length, throwOnEndOfStream: false);
        var span = area.AsSpan(0, n);
        var at = 0;
        while (at + 8 <= span.Length)
        {
            var type = BinaryPrimitives.ReadUInt32BigEndian(span[at..]);
            var length = BinaryPrimitives.ReadUInt32BigEndian(span[(at + 4)..]);
            if (type == 0) return null;
            if (length > span.Length - at - 8) throw Unsafe(name, $"has a header extension 0x{type:x8} of {length} bytes that runs past its first cluster");
            if (type == ExternalDataFileExtension) return Encoding.UTF8.GetString(span.Slice(at + 8, (int)length));
            at += 8 + (int)((length + 7) & ~7u);
        }

        return null;
    }

    private static VmToolsException Unsafe(string name, string why)
        => new(UnsafeErrorId, FailureKind.SecurityError, $"'{name}' {why}.") { Target = name };
}
