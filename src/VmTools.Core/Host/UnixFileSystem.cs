using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmTools.Core.Host;

/// <summary>
/// The Linux file calls the BCL lacks and a root filesystem needs, all of the <c>*at</c> kind: relative
/// to an open directory and never following a symlink in the last component. <see cref="BeneathRoot"/>
/// and <see cref="BeneathDirectory"/> are the only callers; nothing here takes a path with a slash.
/// Each call returns 0 or the errno, so callers decide what is fatal.
/// </summary>
internal static partial class UnixFileSystem
{
    public const int ENOENT = 2;
    public const int EEXIST = 17;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EPERM = 1;
    public const int EXDEV = 18;
    public const int ELOOP = 40;
    public const int ENOSYS = 38;
    public const int ENOTEMPTY = 39;
    public const int EOPNOTSUPP = 95;

    public const uint S_IFMT = 0xF000;
    public const uint S_IFIFO = 0x1000;
    public const uint S_IFCHR = 0x2000;
    public const uint S_IFDIR = 0x4000;
    public const uint S_IFBLK = 0x6000;
    public const uint S_IFREG = 0x8000;
    public const uint S_IFLNK = 0xA000;

    public const int O_WRONLY = 0x1;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int O_PATH = 0x200000;

    // The generic (arm64, riscv64) values differ from x86_64's for these two.
    public static readonly int O_DIRECTORY = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86 ? 0x10000 : 0x4000;
    public static readonly int O_NOFOLLOW = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86 ? 0x20000 : 0x8000;

    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_REMOVEDIR = 0x200;
    public const int AT_EMPTY_PATH = 0x1000;

    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_NO_SYMLINKS = 0x04;
    public const ulong RESOLVE_BENEATH = 0x08;

    // Syscall numbers since 5.x are the same on every architecture.
    private const long SYS_openat2 = 437;
    private const long SYS_fchmodat2 = 452;

    public static bool IsRoot => geteuid() == 0;

    /// <summary>openat2(2) with a resolve policy; -1 and the errno, or the new fd.</summary>
    public static int OpenAt2(SafeFileHandle directory, string path, int flags, ulong resolve, out int errno)
    {
        var how = new OpenHow { Flags = (ulong)(uint)flags, Mode = 0, Resolve = resolve };
        var fd = (int)syscall_openat2(SYS_openat2, directory, path, ref how, (nuint)Marshal.SizeOf<OpenHow>());
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd;
    }

    public static int OpenAt(SafeFileHandle directory, string name, int flags, uint mode, out int errno)
    {
        var fd = openat(directory, name, flags, mode);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd;
    }

    public static int MakeDirectoryAt(SafeFileHandle directory, string name, uint mode) => Result(mkdirat(directory, name, mode));

    public static int SymlinkAt(string target, SafeFileHandle directory, string name) => Result(symlinkat(target, directory, name));

    /// <summary>linkat(2) without AT_SYMLINK_FOLLOW: the link is to the entry itself, never to what a symlink names.</summary>
    public static int LinkAt(SafeFileHandle fromDirectory, string fromName, SafeFileHandle toDirectory, string toName)
        => Result(linkat(fromDirectory, fromName, toDirectory, toName, 0));

    public static int MakeNodeAt(SafeFileHandle directory, string name, uint mode, ulong device) => Result(mknodat(directory, name, mode, device));

    public static int UnlinkAt(SafeFileHandle directory, string name, int flags) => Result(unlinkat(directory, name, flags));

    public static int ChangeOwnerAt(SafeFileHandle directory, string name, int uid, int gid)
        => Result(fchownat(directory, name, (uint)uid, (uint)gid, AT_SYMLINK_NOFOLLOW));

    public static int ChangeOwner(SafeFileHandle file, int uid, int gid) => Result(fchown(file, (uint)uid, (uint)gid));

    public static int ChangeMode(SafeFileHandle file, uint mode) => Result(fchmod(file, mode));

    /// <summary>fchmodat2(2) with AT_SYMLINK_NOFOLLOW (Linux 6.6+): the mode of the entry itself; ENOSYS on older kernels.</summary>
    public static int ChangeModeAtNoFollow(SafeFileHandle directory, string name, uint mode)
        => syscall_fchmodat2(SYS_fchmodat2, directory, name, mode, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>fchmodat(2) without flags: follows a symlink, so only for a name just checked not to be one.</summary>
    public static int ChangeModeAt(SafeFileHandle directory, string name, uint mode) => Result(fchmodat(directory, name, mode, 0));

    public static int SetTimesAt(SafeFileHandle directory, string name, DateTimeOffset modified)
    {
        var times = Times(modified);
        return Result(utimensat(directory, name, times, AT_SYMLINK_NOFOLLOW));
    }

    public static int SetTimes(SafeFileHandle file, DateTimeOffset modified) => Result(futimens(file, Times(modified)));

    public static int SetExtendedAttribute(SafeFileHandle file, string name, byte[] value)
        => Result(fsetxattr(file, name, value, (nuint)value.Length, 0));

    /// <summary>statx(2) of <paramref name="name"/> without following it ("" with AT_EMPTY_PATH: the fd itself).</summary>
    public static unsafe int StatAt(SafeFileHandle directory, string name, out EntryStat stat)
    {
        var buffer = stackalloc byte[256];
        var flags = AT_SYMLINK_NOFOLLOW | (name.Length == 0 ? AT_EMPTY_PATH : 0);
        // STATX_TYPE | STATX_MODE | STATX_INO
        if (statx(directory, name, flags, 0x1 | 0x2 | 0x100, buffer) != 0)
        {
            stat = default;
            return Marshal.GetLastPInvokeError();
        }

        stat = new EntryStat(*(ushort*)(buffer + 28), *(ulong*)(buffer + 32), ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140));
        return 0;
    }

    /// <summary>The names in an open directory (not "." or ".."); the fd is consumed.</summary>
    public static unsafe List<string> ReadDirectory(int ownedFd)
    {
        var names = new List<string>();
        var dir = fdopendir(ownedFd);
        if (dir == IntPtr.Zero)
        {
            var errno = Marshal.GetLastPInvokeError();
            close(ownedFd);
            throw new IOException($"fdopendir failed (errno {errno}).");
        }

        try
        {
            while (true)
            {
                var entry = readdir(dir);
                if (entry == IntPtr.Zero) break;
                // glibc's 64-bit struct dirent: d_ino, d_off, d_reclen, d_type, then d_name.
                var name = Marshal.PtrToStringUTF8(entry + 19)!;
                if (name is "." or "..") continue;
                names.Add(name);
            }
        }
        finally
        {
            closedir(dir);
        }

        return names;
    }

    /// <summary>The glibc encoding of makedev(3).</summary>
    internal static ulong MakeDevice(int major, int minor)
    {
        ulong ma = (uint)major, mi = (uint)minor;
        return ((ma & 0xfffff000UL) << 32) | ((ma & 0xfffUL) << 8) | ((mi & 0xffffff00UL) << 12) | (mi & 0xffUL);
    }

    private static Timespec[] Times(DateTimeOffset modified)
    {
        var ticks = modified.UtcTicks - DateTime.UnixEpoch.Ticks;
        var t = new Timespec { Seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest), Nanoseconds = rest * 100 };
        if (t.Nanoseconds < 0)
        {
            t.Seconds--;
            t.Nanoseconds += 1_000_000_000;
        }

        return new[] { t, t };
    }

    private static int Result(int rc) => rc == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>A file's type and identity (inode on the filesystem of device <paramref name="FileSystem"/>), as statx reports them.</summary>
    public readonly record struct EntryStat(ushort Mode, ulong Inode, ulong FileSystem)
    {
        public uint Type => Mode & S_IFMT;
        public bool IsDirectory => Type == S_IFDIR;
        public bool IsRegularFile => Type == S_IFREG;
        public bool IsSymlink => Type == S_IFLNK;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long syscall_openat2(long number, SafeFileHandle directory, string path, ref OpenHow how, nuint size);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long syscall_fchmodat2(long number, SafeFileHandle directory, string path, uint mode, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(SafeFileHandle directory, string name, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdirat(SafeFileHandle directory, string name, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int symlinkat(string target, SafeFileHandle directory, string name);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat(SafeFileHandle fromDirectory, string fromName, SafeFileHandle toDirectory, string toName, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknodat(SafeFileHandle directory, string name, uint mode, ulong device);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlinkat(SafeFileHandle directory, string name, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fchownat(SafeFileHandle directory, string name, uint owner, uint group, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchown(SafeFileHandle file, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchmod(SafeFileHandle file, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fchmodat(SafeFileHandle directory, string name, uint mode, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int utimensat(SafeFileHandle directory, string name, [In] Timespec[] times, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int futimens(SafeFileHandle file, [In] Timespec[] times);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fsetxattr(SafeFileHandle file, string name, byte[] value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(SafeFileHandle directory, string name, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial IntPtr fdopendir(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial IntPtr readdir(IntPtr dir);

    [LibraryImport("libc")]
    private static partial int closedir(IntPtr dir);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
