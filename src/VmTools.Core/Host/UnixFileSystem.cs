using System.Runtime.InteropServices;

namespace VmTools.Core.Host;

/// <summary>
/// The few POSIX file calls the BCL lacks and a root filesystem needs: hard links, ownership of links,
/// device nodes and extended attributes. Each returns the errno on failure so callers decide what is fatal.
/// </summary>
public static partial class UnixFileSystem
{
    private const uint S_IFIFO = 0x1000;
    private const uint S_IFCHR = 0x2000;
    private const uint S_IFBLK = 0x6000;

    public static bool IsRoot => geteuid() == 0;

    /// <summary>link(2): a second name for <paramref name="existing"/>; never follows a symlink at <paramref name="existing"/>.</summary>
    public static int TryHardLink(string existing, string newPath) => Result(link(existing, newPath));

    /// <summary>lchown(2): owner of the entry itself (a symlink is not followed).</summary>
    public static int TryChangeOwner(string path, int uid, int gid) => Result(lchown(path, (uint)uid, (uint)gid));

    public static int TryMakeCharacterDevice(string path, UnixFileMode mode, int major, int minor)
        => Result(mknod(path, S_IFCHR | (uint)mode, MakeDevice(major, minor)));

    public static int TryMakeBlockDevice(string path, UnixFileMode mode, int major, int minor)
        => Result(mknod(path, S_IFBLK | (uint)mode, MakeDevice(major, minor)));

    public static int TryMakeFifo(string path, UnixFileMode mode) => Result(mknod(path, S_IFIFO | (uint)mode, 0));

    /// <summary>lsetxattr(2), e.g. security.capability on a binary.</summary>
    public static int TrySetExtendedAttribute(string path, string name, byte[] value)
        => Result(lsetxattr(path, name, value, (nuint)value.Length, 0));

    /// <summary>The glibc encoding of makedev(3).</summary>
    internal static ulong MakeDevice(int major, int minor)
    {
        ulong ma = (uint)major, mi = (uint)minor;
        return ((ma & 0xfffff000UL) << 32) | ((ma & 0xfffUL) << 8) | ((mi & 0xffffff00UL) << 12) | (mi & 0xffUL);
    }

    private static int Result(int rc) => rc == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldPath, string newPath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknod(string path, uint mode, ulong dev);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lsetxattr(string path, string name, byte[] value, nuint size, int flags);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
