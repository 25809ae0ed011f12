using System.Formats.Tar;
using VmTools.Core.Host;

namespace VmTools.Core.Images;

/// <summary>
/// Walks a layer's tar with System.Formats.Tar, refusing entries that escape the root, and takes out
/// the disk (KubeVirt <c>disk/*.qcow2|img</c> or flightctl <c>qcow2/disk.qcow2</c>) and boot files.
/// What it writes has fixed names in the work folder, created through <see cref="BeneathRoot"/> so a
/// symlink planted there is replaced, never written through.
/// </summary>
internal static class ContainerDiskExtractor
{
    private const long MaxBootFileBytes = 512L * 1024 * 1024;

    public sealed record Result(string DiskEntry, long DiskSize, IReadOnlyList<string> BootFiles);

    /// <param name="tar">The uncompressed layer.</param>
    /// <param name="workDirectory">Where disk.qcow2 and boot files are written.</param>
    /// <param name="diskAlreadyPlaced">When set, this entry's bytes were ranged into place already: validate, don't copy.</param>
    public static async Task<Result?> ExtractAsync(Stream tar, string workDirectory, string? diskAlreadyPlaced, Action<long>? diskBytes, CancellationToken ct)
    {
        string? diskEntry = diskAlreadyPlaced;
        long diskSize = diskAlreadyPlaced is null ? 0 : new FileInfo(Path.Combine(workDirectory, ImageStore.DiskFileName)).Length;
        var boot = new List<string>();
        using var work = BeneathRoot.Open(workDirectory);
        using var reader = new TarReader(tar, leaveOpen: true);
        while (true)
        {
            TarEntry? entry;
            try
            {
                entry = await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
            {
                throw new VmToolsException("ImageLayerInvalid", FailureKind.InvalidData, $"The image layer is not a valid tar archive: {e.Message}", e);
            }

            if (entry is null) break;
            var name = LayerEntryPath.Normalize(entry.Name);
            if (entry.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink)
            {
                LayerEntryPath.CheckLinkTarget(entry.Name, entry.LinkName, entry.EntryType == TarEntryType.HardLink);
                continue;
            }

            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile)) continue;
            if (diskEntry is null && LayerEntryPath.IsDisk(name))
            {
                diskEntry = name;
                diskSize = entry.Length;
                await CopyAsync(entry, work, ImageStore.DiskFileName, diskBytes, ct).ConfigureAwait(false);
            }
            else if (LayerEntryPath.BootFileName(name) is { } bootName && entry.Length <= MaxBootFileBytes && !boot.Contains(bootName))
            {
                await CopyAsync(entry, work, bootName, null, ct).ConfigureAwait(false);
                boot.Add(bootName);
            }
        }

        return diskEntry is null ? null : new Result(diskEntry, diskSize, boot);
    }

    private static async Task CopyAsync(TarEntry entry, BeneathRoot work, string fileName, Action<long>? progress, CancellationToken ct)
    {
        using var folder = work.OpenParent(fileName, createMissing: false, out var name);
        folder.Remove(name);
        using var output = folder.CreateFile(name, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        if (entry.DataStream is null) return;
        var buffer = new byte[1 << 20];
        long offset = 0;
        int n;
        while ((n = await entry.DataStream.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await RandomAccess.WriteAsync(output, buffer.AsMemory(0, n), offset, ct).ConfigureAwait(false);
            offset += n;
            progress?.Invoke(n);
        }
    }
}
