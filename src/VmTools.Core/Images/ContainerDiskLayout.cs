using System.Buffers;

namespace VmTools.Core.Images;

/// <summary>
/// The one uncompressed tar layer VmTools publishes: <c>disk/disk.qcow2</c> (KubeVirt containerDisk, owned
/// by qemu's uid 107), optional boot files beside it, and the hard link <c>qcow2/disk.qcow2</c> that the
/// flightctl scripts copy out. The whole layout is planned up front, so the size and the disk's byte offset
/// are known before streaming and identical input always yields identical bytes (and digest).
/// </summary>
public sealed class ContainerDiskLayout
{
    public const string DiskEntry = "disk/disk.qcow2";
    public const string FlightctlEntry = "qcow2/disk.qcow2";
    private const int QemuUid = 107;

    private readonly List<Part> _parts = new();

    private ContainerDiskLayout(string diskPath, IReadOnlyList<BootFile> bootFiles, long mtime)
    {
        DiskPath = diskPath;
        BootFiles = bootFiles;
        long offset = 0;
        void Add(byte[] header, string? source = null, long size = 0)
        {
            _parts.Add(new Part(header, source, size, offset));
            offset += header.Length + TarHeaderWriter.Padded(size);
        }

        var diskSize = new FileInfo(diskPath).Length;
        Add(TarHeaderWriter.Header("disk/", '5', 0, 0x16d, QemuUid, QemuUid, mtime));
        var diskHeader = TarHeaderWriter.Header(DiskEntry, '0', diskSize, 0x1a4, QemuUid, QemuUid, mtime);
        DiskDataOffset = offset + diskHeader.Length;
        Add(diskHeader, diskPath, diskSize);
        foreach (var b in bootFiles)
        {
            var size = new FileInfo(b.SourcePath).Length;
            Add(TarHeaderWriter.Header("disk/" + b.Name, '0', size, 0x1a4, QemuUid, QemuUid, mtime), b.SourcePath, size);
        }

        Add(TarHeaderWriter.Header("qcow2/", '5', 0, 0x1ed, 0, 0, mtime));
        Add(TarHeaderWriter.Header(FlightctlEntry, '1', 0, 0x1a4, QemuUid, QemuUid, mtime, DiskEntry));
        DiskSize = diskSize;
        TotalSize = offset + 2 * TarHeaderWriter.Block;
    }

    public string DiskPath { get; }

    public IReadOnlyList<BootFile> BootFiles { get; }

    public long DiskSize { get; }

    public long DiskDataOffset { get; }

    public long TotalSize { get; }

    public static ContainerDiskLayout Plan(string diskPath, IEnumerable<BootFile>? bootFiles, DateTimeOffset modified)
        => new(diskPath, (bootFiles ?? Array.Empty<BootFile>()).ToList(), Math.Max(0, modified.ToUnixTimeSeconds()));

    /// <summary>Streams the layer; <paramref name="bytesWritten"/> is told each chunk's size for progress.</summary>
    public async Task WriteAsync(Stream output, Action<long>? bytesWritten, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            foreach (var part in _parts)
            {
                await output.WriteAsync(part.Header, ct).ConfigureAwait(false);
                bytesWritten?.Invoke(part.Header.Length);
                if (part.Source is null) continue;
                await using var src = new FileStream(part.Source, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan | FileOptions.Asynchronous);
                long left = part.Size;
                while (left > 0)
                {
                    var n = await src.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new VmToolsException("ImageSourceChanged", FailureKind.InvalidData, $"'{part.Source}' shrank while it was being read.") { Target = part.Source };
                    }

                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    bytesWritten?.Invoke(n);
                    left -= n;
                }

                var pad = (int)(TarHeaderWriter.Padded(part.Size) - part.Size);
                if (pad > 0)
                {
                    await output.WriteAsync(new byte[pad], ct).ConfigureAwait(false);
                    bytesWritten?.Invoke(pad);
                }
            }

            await output.WriteAsync(new byte[2 * TarHeaderWriter.Block], ct).ConfigureAwait(false);
            bytesWritten?.Invoke(2 * TarHeaderWriter.Block);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private sealed record Part(byte[] Header, string? Source, long Size, long Offset);
}

/// <summary>A file that travels beside the disk for direct kernel boot (kernel, initrd).</summary>
public sealed record BootFile(string SourcePath, string Name)
{
    /// <summary>A kernel for direct boot, by file name (Debian and Fedora: vmlinuz-VERSION; uncompressed: vmlinux).</summary>
    public static bool IsKernel(string fileName) => fileName.StartsWith("vmlinuz", StringComparison.Ordinal) || fileName.StartsWith("vmlinux", StringComparison.Ordinal);

    /// <summary>An initrd for direct boot, by file name (Debian: initrd.img-VERSION; Fedora: initramfs-VERSION.img).</summary>
    public static bool IsInitrd(string fileName) => fileName.StartsWith("initrd", StringComparison.Ordinal) || fileName.StartsWith("initramfs", StringComparison.Ordinal);
}
