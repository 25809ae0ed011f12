using Microsoft.Win32.SafeHandles;
using static VmTools.Core.Host.UnixFileSystem;

namespace VmTools.Core.Host;

/// <summary>
/// A directory that untrusted names (tar entries, layer files) are written beneath, held open by fd.
/// Every path is resolved from that fd with openat2 <c>RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS</c> (or,
/// where openat2 is missing, one <c>O_NOFOLLOW</c> component at a time), so no symlink, however it got
/// there, and no <c>..</c> can carry a write outside: escape is impossible by construction, not by
/// remembering which names were checked. The one home for this rule; extractors use nothing else.
/// </summary>
public sealed class BeneathRoot : IDisposable
{
    private const uint DefaultDirectoryMode = 0b111_101_101;
    /// <summary>Set once openat2 answered ENOSYS (kernels before 5.6); tests set it to exercise the component walk.</summary>
    internal static bool Openat2Missing { get; set; }

    private readonly SafeFileHandle _fd;

    private BeneathRoot(string path, SafeFileHandle fd)
    {
        Path = path;
        _fd = fd;
    }

    /// <summary>The root as the caller named it; for messages only, never for resolving entries.</summary>
    public string Path { get; }

    /// <summary>Opens <paramref name="path"/> (trusted: the caller's own scratch or store folder) as the root.</summary>
    public static BeneathRoot Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        using var cwd = new SafeFileHandle(-100, ownsHandle: false); // AT_FDCWD: the path is absolute
        var fd = OpenAt(cwd, full, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, out var errno);
        if (fd < 0) throw new IOException($"Cannot open '{full}' as a directory (errno {errno}).");
        return new BeneathRoot(full, new SafeFileHandle(fd, ownsHandle: true));
    }

    /// <summary>
    /// The directory holding <paramref name="relative"/>'s last component, and that component's name.
    /// Missing parents are made (0755, like a container engine) when <paramref name="createMissing"/>;
    /// a parent that is a symlink or not a directory is refused.
    /// </summary>
    public BeneathDirectory OpenParent(string relative, bool createMissing, out string name)
    {
        var segments = Segments(relative);
        name = segments[^1];
        return OpenDirectoryFd(segments[..^1], createMissing, O_PATH, relative);
    }

    /// <summary>
    /// The directory <paramref name="relative"/> itself ("" for the root), opened readable so its owner,
    /// mode and times can be set on the fd; null when it is no longer a real directory beneath the root
    /// (a later entry replaced it with a symlink or a file).
    /// </summary>
    public BeneathDirectory? TryOpenDirectory(string relative)
    {
        try
        {
            return OpenDirectoryFd(relative.Length == 0 ? Array.Empty<string>() : Segments(relative), createMissing: false, 0, relative);
        }
        catch (PathNotBeneathRootException)
        {
            return null;
        }
    }

    public void Dispose() => _fd.Dispose();

    private BeneathDirectory OpenDirectoryFd(string[] segments, bool createMissing, int access, string relative)
    {
        var flags = access | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        if (segments.Length == 0) return new BeneathDirectory(Reopen(_fd, ".", flags, relative), string.Empty);
        var joined = string.Join('/', segments);
        var fd = OpenBeneath(_fd, joined, flags, out var errno);
        if (fd >= 0) return new BeneathDirectory(new SafeFileHandle(fd, ownsHandle: true), joined);
        if (errno != ENOENT || !createMissing) throw new PathNotBeneathRootException(relative, joined, errno);

        // Walk down, making what is missing; each step is again a single no-follow component.
        var current = Reopen(_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, relative);
        var walked = string.Empty;
        try
        {
            for (var i = 0; i < segments.Length; i++)
            {
                walked = walked.Length == 0 ? segments[i] : walked + "/" + segments[i];
                var stepFlags = i == segments.Length - 1 ? flags : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
                var next = OpenBeneath(current, segments[i], stepFlags, out errno);
                if (next < 0 && errno == ENOENT)
                {
                    var made = MakeDirectoryAt(current, segments[i], DefaultDirectoryMode);
                    if (made is not (0 or EEXIST)) throw new PathNotBeneathRootException(relative, walked, made);
                    next = OpenBeneath(current, segments[i], stepFlags, out errno);
                }

                if (next < 0) throw new PathNotBeneathRootException(relative, walked, errno);
                current.Dispose();
                current = new SafeFileHandle(next, ownsHandle: true);
            }

            return new BeneathDirectory(current, joined);
        }
        catch
        {
            current.Dispose();
            throw;
        }
    }

    private static SafeFileHandle Reopen(SafeFileHandle directory, string name, int flags, string relative)
    {
        var fd = OpenAt(directory, name, flags, 0, out var errno);
        if (fd < 0) throw new PathNotBeneathRootException(relative, name, errno);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Opens <paramref name="path"/> (slash-separated, no "." or "..") beneath <paramref name="directory"/>
    /// without following any symlink: ELOOP when one is in the way, EXDEV when the path would leave.
    /// </summary>
    internal static int OpenBeneath(SafeFileHandle directory, string path, int flags, out int errno)
    {
        if (!Openat2Missing)
        {
            // RESOLVE_NO_SYMLINKS covers the last component too (ELOOP); O_NOFOLLOW would turn that into
            // ENOTDIR with O_PATH|O_DIRECTORY and hide why.
            var fd = OpenAt2(directory, path, flags & ~O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, out errno);
            if (fd >= 0 || errno != ENOSYS) return fd;
            Openat2Missing = true;
        }

        return OpenBeneathByComponents(directory, path, flags, out errno);
    }

    /// <summary>The pre-5.6 way: each component opened O_PATH|O_NOFOLLOW and checked to be a directory.</summary>
    private static int OpenBeneathByComponents(SafeFileHandle directory, string path, int flags, out int errno)
    {
        var parts = path.Split('/');
        SafeFileHandle? current = null;
        try
        {
            for (var i = 0; i < parts.Length; i++)
            {
                var from = current ?? directory;
                if (i == parts.Length - 1)
                {
                    // O_NOFOLLOW makes a symlink here ELOOP (or, with O_PATH, opens the link, caught below).
                    var last = OpenAt(from, parts[i], flags | O_NOFOLLOW, 0, out errno);
                    if (last < 0 && errno == ENOTDIR && StatAt(from, parts[i], out var named) == 0 && named.IsSymlink) errno = ELOOP;
                    if (last < 0 || (flags & O_PATH) == 0) return last;
                    using var probe = new SafeFileHandle(last, ownsHandle: false);
                    if (StatAt(probe, string.Empty, out var s) == 0 && s.IsSymlink)
                    {
                        new SafeFileHandle(last, ownsHandle: true).Dispose();
                        errno = ELOOP;
                        return -1;
                    }

                    return last;
                }

                var fd = OpenAt(from, parts[i], O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, out errno);
                if (fd < 0) return -1;
                var next = new SafeFileHandle(fd, ownsHandle: true);
                current?.Dispose();
                current = next;
                var rc = StatAt(current, string.Empty, out var stat);
                if (rc != 0 || !stat.IsDirectory)
                {
                    errno = rc != 0 ? rc : stat.IsSymlink ? ELOOP : ENOTDIR;
                    return -1;
                }
            }

            errno = ENOENT;
            return -1;
        }
        finally
        {
            current?.Dispose();
        }
    }

    /// <summary>The components of a relative path; "", ".", ".." and absolute paths are refused, never cleaned.</summary>
    private static string[] Segments(string relative)
    {
        var segments = relative.Split('/');
        if (relative.Length == 0 || segments.Any(s => s is "" or "." or ".." || s.Contains('\0')))
        {
            throw new PathNotBeneathRootException(relative, relative, EXDEV);
        }

        return segments;
    }
}
