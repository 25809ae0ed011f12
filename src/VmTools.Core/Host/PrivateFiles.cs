namespace VmTools.Core.Host;

/// <summary>
/// The one place files and folders that hold secrets (keys, passwords, guest disks that receive keys,
/// consoles, sockets, the state database, volume streams) are made: folders 0700, files 0600, whatever
/// the umask. Creating with the mode (rather than chmod after) leaves no window in which another user
/// could open the file; an existing entry is tightened, never loosened.
/// </summary>
public static class PrivateFiles
{
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>A folder only its owner may enter (missing parents are created 0700 too); an existing one is tightened to 0700.</summary>
    public static DirectoryInfo CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) return Directory.CreateDirectory(path);
        var info = Directory.CreateDirectory(path, DirectoryMode);
        Restrict(path, DirectoryMode);
        return info;
    }

    /// <summary>Opens a file created 0600 (<paramref name="mode"/> as for FileStream); an existing file opened this way is tightened to 0600.</summary>
    public static FileStream Open(string path, FileMode mode = System.IO.FileMode.CreateNew, FileAccess access = FileAccess.ReadWrite, FileShare share = FileShare.None, FileOptions options = FileOptions.None)
    {
        var fso = new FileStreamOptions { Mode = mode, Access = access, Share = share, Options = options };
        if (!OperatingSystem.IsWindows()) fso.UnixCreateMode = FileMode;
        var stream = new FileStream(path, fso);
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(stream.SafeFileHandle) & ~FileMode) != 0)
        {
            File.SetUnixFileMode(stream.SafeFileHandle, File.GetUnixFileMode(stream.SafeFileHandle) & FileMode);
        }

        return stream;
    }

    /// <summary>
    /// An empty 0600 file at <paramref name="path"/> (an existing one is kept, tightened), made before another
    /// program (qemu's console log) opens it with O_CREAT: open keeps the mode of a file that exists.
    /// </summary>
    public static void Precreate(string path)
    {
        using var _ = Open(path, System.IO.FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
    }

    /// <summary>
    /// A VM's directory, 0700 (which also keeps everyone else from the QMP socket qemu binds in it, whatever
    /// mode the umask gives the socket), with the console log made 0600 before qemu opens it: qemu's
    /// <c>-serial file:</c> opens with O_CREAT|O_TRUNC, which keeps the mode of a file that exists.
    /// </summary>
    public static void PrepareVmDirectory(string directory, string consoleLogPath)
    {
        CreateDirectory(directory);
        Precreate(consoleLogPath);
    }

    /// <summary>Takes group and other bits off a file another program created (qemu-img's overlay, zfs send's output).</summary>
    public static void Restrict(string path) => Restrict(path, FileMode | UnixFileMode.UserExecute);

    private static void Restrict(string path, UnixFileMode allowed)
    {
        if (OperatingSystem.IsWindows()) return;
        var mode = File.GetUnixFileMode(path);
        if ((mode & ~allowed) != 0) File.SetUnixFileMode(path, mode & allowed);
    }
}
