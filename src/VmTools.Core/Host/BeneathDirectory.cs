using Microsoft.Win32.SafeHandles;
using static VmTools.Core.Host.UnixFileSystem;

namespace VmTools.Core.Host;

/// <summary>
/// An open directory beneath a <see cref="BeneathRoot"/>. Everything here acts on a single name inside
/// it, never follows a symlink at that name, and creates only with O_EXCL: an entry can replace what is
/// in this directory and nothing else.
/// </summary>
public sealed class BeneathDirectory : IDisposable
{
    private readonly SafeFileHandle _fd;

    internal BeneathDirectory(SafeFileHandle fd, string relativePath)
    {
        _fd = fd;
        RelativePath = relativePath;
    }

    /// <summary>Where this directory is, relative to the root ("" for the root itself).</summary>
    public string RelativePath { get; }

    public void Dispose() => _fd.Dispose();

    /// <summary>Type and identity of <paramref name="name"/> itself; null when nothing has that name.</summary>
    internal EntryStat? Stat(string name)
    {
        var rc = StatAt(_fd, name, out var stat);
        if (rc == ENOENT) return null;
        if (rc != 0) throw Failed("stat", name, rc);
        return stat;
    }

    /// <summary>Type and identity of this directory.</summary>
    internal EntryStat StatSelf()
    {
        var rc = StatAt(_fd, string.Empty, out var stat);
        if (rc != 0) throw Failed("stat", ".", rc);
        return stat;
    }

    /// <summary>Removes <paramref name="name"/>, a whole tree if it is a directory; a symlink is removed, not followed.</summary>
    public void Remove(string name)
    {
        var stat = Stat(name);
        if (stat is null) return;
        if (stat.Value.IsDirectory)
        {
            using (var child = OpenChildDirectory(name))
            {
                foreach (var inner in child.List()) child.Remove(inner);
            }

            Check("rmdir", name, UnlinkAt(_fd, name, AT_REMOVEDIR));
            return;
        }

        Check("unlink", name, UnlinkAt(_fd, name, 0));
    }

    public void MakeDirectory(string name, UnixFileMode mode) => Check("mkdir", name, MakeDirectoryAt(_fd, name, (uint)mode));

    /// <summary>A new regular file, created O_EXCL|O_NOFOLLOW and opened for writing.</summary>
    public SafeFileHandle CreateFile(string name, UnixFileMode mode)
    {
        var fd = OpenAt(_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (uint)mode, out var errno);
        if (fd < 0) throw Failed("create", name, errno);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>A symlink holding <paramref name="target"/> as text; VmTools never resolves it.</summary>
    public void MakeSymlink(string name, string target) => Check("symlink", name, SymlinkAt(target, _fd, name));

    /// <summary>A second name for <paramref name="fromName"/> in <paramref name="from"/> (the entry itself, never a symlink's target).</summary>
    public void HardLink(BeneathDirectory from, string fromName, string name) => Check("link", name, LinkAt(from._fd, fromName, _fd, name));

    /// <summary>mknodat(2) of a device node or fifo; the errno (EPERM without root) is the caller's to judge.</summary>
    public int TryMakeNode(string name, uint type, UnixFileMode mode, int major, int minor)
        => MakeNodeAt(_fd, name, type | (uint)mode, MakeDevice(major, minor));

    /// <summary>Owner of <paramref name="name"/> itself (fchownat, AT_SYMLINK_NOFOLLOW); 0 or the errno.</summary>
    public int TrySetOwner(string name, int uid, int gid) => ChangeOwnerAt(_fd, name, uid, gid);

    /// <summary>Modification time of <paramref name="name"/> itself (utimensat, AT_SYMLINK_NOFOLLOW).</summary>
    public void SetTimes(string name, DateTimeOffset modified) => Check("utimensat", name, SetTimesAt(_fd, name, modified));

    /// <summary>
    /// Mode of a special file (fifo, device node) without following a symlink: fchmodat2 with
    /// AT_SYMLINK_NOFOLLOW; before Linux 6.6, fchmodat after checking the name is not a symlink (the
    /// directory is private to this process, so nothing swaps it in between).
    /// </summary>
    public void SetSpecialFileMode(string name, UnixFileMode mode)
    {
        var rc = ChangeModeAtNoFollow(_fd, name, (uint)mode);
        if (rc == ENOSYS)
        {
            if (Stat(name) is not { IsSymlink: false }) throw Failed("chmod", name, ELOOP);
            rc = ChangeModeAt(_fd, name, (uint)mode);
        }

        Check("chmod", name, rc);
    }

    /// <summary>The directory's own fd-level metadata: owner, mode, times, xattrs. Needs a readable open (<see cref="BeneathRoot.TryOpenDirectory"/>).</summary>
    public SafeFileHandle Handle => _fd;

    private BeneathDirectory OpenChildDirectory(string name)
    {
        var fd = BeneathRoot.OpenBeneath(_fd, name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, out var errno);
        if (fd < 0) throw Failed("open", name, errno);
        return new BeneathDirectory(new SafeFileHandle(fd, ownsHandle: true), Join(name));
    }

    private List<string> List()
    {
        // fdopendir takes the fd it is given, so hand it a fresh one of this directory.
        var fd = OpenAt(_fd, ".", O_DIRECTORY | O_CLOEXEC, 0, out var errno);
        if (fd < 0) throw Failed("open", ".", errno);
        return ReadDirectory(fd);
    }

    private string Join(string name) => RelativePath.Length == 0 ? name : RelativePath + "/" + name;

    private void Check(string call, string name, int errno)
    {
        if (errno != 0) throw Failed(call, name, errno);
    }

    private IOException Failed(string call, string name, int errno)
        => errno == ELOOP ? new PathNotBeneathRootException(Join(name), Join(name), ELOOP)
            : new IOException($"{call} '/{Join(name)}' failed (errno {errno}).") { HResult = errno };
}
