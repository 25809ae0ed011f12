using System.IO.Compression;

namespace VmTools.Core.Images;

/// <summary>Opens a rootfs tarball as a plain tar stream, recognising gzip and zstd by their magic bytes.</summary>
public static class RootfsArchiveFile
{
    /// <summary>The tar stream of <paramref name="path"/>; <paramref name="fileBytesRead"/> counts bytes read from the file itself.</summary>
    public static Stream OpenRead(string path, IProgress<long>? fileBytesRead = null)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VmToolsException("Qcow2ImageInputNotFound", FailureKind.NotFound, $"Root filesystem archive '{path}' does not exist.", e) { Target = path };
        }

        Span<byte> magic = stackalloc byte[6];
        var n = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        file.Position = 0;
        magic = magic[..n];
        var counted = new Host.CountingReadStream(file, fileBytesRead);
        if (magic.StartsWith(new byte[] { 0x1f, 0x8b })) return new GZipStream(counted, CompressionMode.Decompress);
        if (magic.StartsWith(new byte[] { 0x28, 0xb5, 0x2f, 0xfd })) return new ZstdSharp.DecompressionStream(counted);
        var other = magic.StartsWith(new byte[] { 0xfd, 0x37, 0x7a, 0x58, 0x5a }) ? "xz"
            : magic.StartsWith("BZh"u8) ? "bzip2"
            : null;
        if (other is not null)
        {
            file.Dispose();
            throw new VmToolsException("RootfsArchiveInvalid", FailureKind.InvalidData,
                $"'{path}' is {other}-compressed; VmTools reads plain, gzip and zstd tarballs. Decompress it first.") { Target = path };
        }

        return counted;
    }
}
