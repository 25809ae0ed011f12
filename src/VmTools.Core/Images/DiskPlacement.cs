using System.Runtime.InteropServices;

namespace VmTools.Core.Images;

/// <summary>How a cached disk is placed where a caller expects it (e.g. bin/output/qcow2/disk.qcow2).</summary>
public enum PlacementMode
{
    /// <summary>Reflink if the filesystem can, else hard link, else copy.</summary>
    Auto,
    Reflink,
    HardLink,
    Copy,
    SymbolicLink,
}

/// <summary>
/// Puts a file at a destination atomically (temp name, then rename) by the cheapest safe means.
/// A reflink shares blocks copy-on-write; a hard link shares the inode, so writing through it would
/// un-verify the cache entry (caught by the size/mtime check, then re-pulled).
/// </summary>
public static partial class DiskPlacement
{
    private const ulong Ficlone = 0x40049409;

    public static PlacementMode Place(string source, string destination, PlacementMode mode)
    {
        var full = Path.GetFullPath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = Host.AtomicFile.TempPathFor(full);
        try
        {
            var used = mode switch
            {
                PlacementMode.Auto => TryReflink(source, temp) ? PlacementMode.Reflink : TryHardLink(source, temp) ? PlacementMode.HardLink : CopyTo(source, temp),
                PlacementMode.Reflink => TryReflink(source, temp) ? PlacementMode.Reflink : throw Unsupported("reflink", full),
                PlacementMode.HardLink => TryHardLink(source, temp) ? PlacementMode.HardLink : throw Unsupported("hard link", full),
                PlacementMode.SymbolicLink => Symlink(source, temp),
                _ => CopyTo(source, temp),
            };
            File.Move(temp, full, overwrite: true);
            return used;
        }
        catch
        {
            Host.AtomicFile.TryDelete(temp);
            throw;
        }
    }

    private static bool TryReflink(string source, string temp)
    {
        using var src = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var dst = new FileStream(temp, FileMode.CreateNew, FileAccess.Write);
        if (Ioctl((int)dst.SafeFileHandle.DangerousGetHandle(), Ficlone, (int)src.SafeFileHandle.DangerousGetHandle()) == 0) return true;
        dst.Dispose();
        File.Delete(temp);
        return false;
    }

    private static bool TryHardLink(string source, string temp) => Link(source, temp) == 0;

    private static PlacementMode CopyTo(string source, string temp)
    {
        File.Copy(source, temp, overwrite: true);
        return PlacementMode.Copy;
    }

    private static PlacementMode Symlink(string source, string temp)
    {
        File.CreateSymbolicLink(temp, Path.GetFullPath(source));
        return PlacementMode.SymbolicLink;
    }

    private static VmToolsException Unsupported(string what, string destination)
        => new("CachePlacementUnsupported", FailureKind.InvalidOperation, $"Cannot {what} the cached disk to '{destination}' (different filesystem, or not supported there). Use -LinkMode Auto or Copy.") { Target = destination };

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, int srcFd);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string oldPath, string newPath);
}
