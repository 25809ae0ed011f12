using System.Buffers.Binary;
using System.Text;

namespace VmTools.Core.Images;

/// <summary>
/// The fields of a qcow2 header VmTools relies on (big-endian, per qemu's docs/interop/qcow2.txt).
/// A cached base must be self-contained: a backing file would point outside the cache.
/// </summary>
public sealed record Qcow2Header(int Version, long VirtualSize, int ClusterBits, string? BackingFile)
{
    private const uint Magic = 0x514649fb; // "QFI\xfb"

    public static Qcow2Header Read(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        return Read(fs, path);
    }

    public static Qcow2Header Read(Stream stream, string name)
    {
        Span<byte> h = stackalloc byte[72];
        if (stream.ReadAtLeast(h, h.Length, throwOnEndOfStream: false) < h.Length || BinaryPrimitives.ReadUInt32BigEndian(h) != Magic)
        {
            throw new VmToolsException("Qcow2HeaderInvalid", FailureKind.InvalidData, $"'{name}' is not a qcow2 image (no QFI magic).") { Target = name };
        }

        var version = (int)BinaryPrimitives.ReadUInt32BigEndian(h[4..]);
        if (version is not (2 or 3))
        {
            throw new VmToolsException("Qcow2HeaderInvalid", FailureKind.InvalidData, $"'{name}' is qcow2 version {version}; only 2 and 3 are known.") { Target = name };
        }

        var backingOffset = BinaryPrimitives.ReadUInt64BigEndian(h[8..]);
        var backingSize = BinaryPrimitives.ReadUInt32BigEndian(h[16..]);
        var clusterBits = (int)BinaryPrimitives.ReadUInt32BigEndian(h[20..]);
        var size = (long)BinaryPrimitives.ReadUInt64BigEndian(h[24..]);
        string? backing = null;
        if (backingOffset != 0 && backingSize > 0)
        {
            var buf = new byte[Math.Min(backingSize, 1023u)];
            stream.Seek((long)backingOffset, SeekOrigin.Begin);
            var n = stream.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
            backing = Encoding.UTF8.GetString(buf, 0, n);
        }

        return new Qcow2Header(version, size, clusterBits, backing);
    }

    /// <summary>Reads the header and refuses images that depend on a backing file.</summary>
    public static Qcow2Header RequireStandalone(string path, string? displayName = null)
    {
        var header = Read(path);
        if (header.BackingFile is not null)
        {
            var name = displayName ?? path;
            throw new VmToolsException("Qcow2HasBackingFile", FailureKind.InvalidData,
                $"'{name}' has a backing file ('{header.BackingFile}'); a cached base must be standalone. Flatten it first: qemu-img convert -O qcow2 overlay.qcow2 flat.qcow2") { Target = name };
        }

        return header;
    }
}
