using System.Runtime.InteropServices;

namespace VmTools.Core.Host;

/// <summary>
/// Who a file is (device and inode, so two hard links are seen as one file) and what removing one of its
/// names gives back: only when <see cref="LinkCount"/> is 1 does an unlink release <see cref="AllocatedBytes"/>.
/// Reflinked files each report their full allocation; the filesystem does not say which blocks are shared.
/// </summary>
public readonly partial record struct FileIdentity(ulong Device, ulong Inode, uint LinkCount, long AllocatedBytes)
{
    private const int AtCurrentDirectory = -100;
    private const int AtSymlinkNoFollow = 0x100;

    // STATX_NLINK | STATX_INO | STATX_BLOCKS
    private const uint Mask = 0x4 | 0x100 | 0x400;

    /// <summary>statx(2) of a path (symlinks followed unless <paramref name="followSymlinks"/> is false); null when it does not exist.</summary>
    public static unsafe FileIdentity? Of(string path, bool followSymlinks = true)
    {
        var buffer = stackalloc byte[256];
        if (statx(AtCurrentDirectory, path, followSymlinks ? 0 : AtSymlinkNoFollow, Mask, buffer) != 0) return null;
        var device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return new FileIdentity(device, *(ulong*)(buffer + 32), *(uint*)(buffer + 16), (long)(*(ulong*)(buffer + 48) * 512));
    }

    /// <summary>True when both names lead to the same inode on the same filesystem.</summary>
    public bool IsSameFile(FileIdentity other) => Device == other.Device && Inode == other.Inode;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int directory, string path, int flags, uint mask, byte* buffer);
}
