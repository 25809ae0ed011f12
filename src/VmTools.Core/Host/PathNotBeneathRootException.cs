namespace VmTools.Core.Host;

/// <summary>
/// A path that <see cref="BeneathRoot"/> would not resolve: it passes through a symlink, through
/// something that is not a directory, or out of the root. Callers turn it into their own ErrorId.
/// </summary>
public sealed class PathNotBeneathRootException : IOException
{
    public PathNotBeneathRootException(string path, string component, int errno)
        : base($"'{path}': {Describe(component, errno)}")
    {
        RelativePath = path;
        Component = component;
        Errno = errno;
    }

    /// <summary>The path asked for, relative to the root.</summary>
    public string RelativePath { get; }

    /// <summary>The prefix of <see cref="RelativePath"/> where resolution stopped.</summary>
    public string Component { get; }

    public int Errno { get; }

    public string Reason => Describe(Component, Errno);

    private static string Describe(string component, int errno) => errno switch
    {
        UnixFileSystem.ELOOP => $"'/{component}' is a symbolic link, which is never followed",
        UnixFileSystem.ENOTDIR => $"'/{component}' is not a directory",
        UnixFileSystem.ENOENT => $"'/{component}' does not exist",
        UnixFileSystem.EXDEV => "the path leaves the root",
        _ => $"'/{component}' cannot be opened (errno {errno})",
    };
}
