using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Images;

/// <summary>
/// Turns an unpacked root filesystem into a qcow2 disk: a sparse raw file, <c>mkfs.ext4 -d</c> to
/// populate it (no mount, no loop device, no root needed for this step), then
/// <c>qemu-img convert -O qcow2</c>, which stores only the blocks the filesystem uses.
/// </summary>
public sealed class Ext4DiskWriter
{
    /// <summary>Room left free by default: enough to install an agent and write logs in the guest.</summary>
    public const long DefaultHeadroomBytes = 256L << 20;

    private const long MiB = 1L << 20;
    private readonly ICommandRunner _runner;

    public Ext4DiskWriter(ICommandRunner runner) => _runner = runner;

    /// <summary>
    /// The smallest filesystem that holds the content: ext4 metadata (inode tables, journal, group
    /// descriptors) costs a few percent plus a fixed journal, so a margin on top of the data blocks.
    /// </summary>
    public static long MinimumSize(RootfsSummary content)
        => RoundUpMiB((long)(content.AllocatedBytes * 1.10) + (long)content.Entries * 256 + 48 * MiB);

    public static long DefaultSize(RootfsSummary content)
        => RoundUpMiB((long)(content.AllocatedBytes * 1.25) + (long)content.Entries * 256 + DefaultHeadroomBytes);

    /// <summary>Inodes for every entry plus as many again for what the guest will add, never fewer than mkfs would choose.</summary>
    public static long InodeCount(RootfsSummary content, long size) => Math.Max(size / 16384, content.Entries * 2L + 4096);

    public async Task WriteAsync(RootfsSummary content, long size, string label, string qcow2Path, CancellationToken ct)
    {
        var raw = qcow2Path + ".raw";
        try
        {
            using (var fs = new FileStream(raw, FileMode.Create, FileAccess.Write))
            {
                fs.SetLength(size);
            }

            (await _runner.RunAsync(CommandSpec.Of("mkfs.ext4",
                "-F", "-q", "-t", "ext4",
                "-L", label,
                "-N", InodeCount(content, size).ToString(CultureInfo.InvariantCulture),
                // A root filesystem's top directory belongs to root whoever runs mkfs.
                "-E", "root_owner=0:0",
                "-d", content.Root,
                raw), ct).ConfigureAwait(false))
                .EnsureSuccess("Ext4CreateFailed");
            (await _runner.RunAsync(CommandSpec.Of("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2Path), ct).ConfigureAwait(false))
                .EnsureSuccess("Qcow2ConvertFailed");
        }
        finally
        {
            AtomicFile.TryDelete(raw);
        }
    }

    private static long RoundUpMiB(long bytes) => (bytes + MiB - 1) / MiB * MiB;
}
