namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// What goes on an image: a tree of directories and files, each file either streamed from a
/// source path at write time or given as (small) bytes. Every name is checked when it is added,
/// so a bad tree fails before any output exists.
/// </summary>
public sealed class IsoContent
{
    public const UnixFileMode DefaultDirectoryMode = (UnixFileMode)0x1ED; // 0755
    public const UnixFileMode DefaultFileMode = (UnixFileMode)0x1A4;      // 0644

    /// <summary>Largest file one ECMA-119 extent can describe (both-endian 32-bit length).</summary>
    public const long MaxFileSize = uint.MaxValue;

    /// <summary>ECMA-119 6.8.2.1 allows eight directory levels, root included.</summary>
    public const int MaxDepth = 8;

    internal IsoDirectoryNode Root { get; } = new(string.Empty, DefaultDirectoryMode);

    /// <summary>Image paths of every file, in the order readers list them.</summary>
    public IReadOnlyList<string> Files => Walk(Root).OfType<IsoFileNode>().Select(f => f.IsoPath).ToList();

    public long TotalFileBytes => Walk(Root).OfType<IsoFileNode>().Sum(f => f.Size);

    public IsoContent AddBytes(string isoPath, byte[] content, UnixFileMode mode = DefaultFileMode)
    {
        ArgumentNullException.ThrowIfNull(content);
        var (parent, name) = ParentFor(isoPath);
        Attach(parent, new IsoFileNode(name, mode, null, content, content.Length), isoPath);
        return this;
    }

    /// <summary>Adds a file whose bytes are streamed from <paramref name="sourcePath"/> when the image is written.</summary>
    public IsoContent AddFile(string isoPath, string sourcePath, UnixFileMode? mode = null)
    {
        var info = new FileInfo(sourcePath);
        if (!info.Exists)
        {
            throw new VmToolsException("IsoSourceNotFound", FailureKind.NotFound,
                $"Cannot add '{isoPath}' to the image: the source file '{sourcePath}' does not exist.") { Target = sourcePath };
        }

        if (info.Length > MaxFileSize)
        {
            throw new VmToolsException("IsoFileTooLarge", FailureKind.LimitsExceeded,
                $"'{sourcePath}' is {info.Length} bytes; one ISO 9660 extent holds at most {MaxFileSize} bytes.") { Target = sourcePath };
        }

        var (parent, name) = ParentFor(isoPath);
        Attach(parent, new IsoFileNode(name, mode ?? ModeOf(info.FullName, DefaultFileMode), info.FullName, null, info.Length), isoPath);
        return this;
    }

    public IsoContent AddDirectory(string isoPath, UnixFileMode mode = DefaultDirectoryMode)
    {
        var dir = DirectoryFor(SplitPath(isoPath), create: true, isoPath);
        dir.Mode = mode;
        return this;
    }

    /// <summary>
    /// Adds everything under <paramref name="sourceDirectory"/> below <paramref name="isoPrefix"/>.
    /// Symbolic links are followed only while they stay inside the source directory.
    /// </summary>
    /// <param name="skip">Relative paths (as on the image, '/'-separated) left off the image, with everything below them.</param>
    public IsoContent AddTree(string sourceDirectory, string isoPrefix = "", Func<string, bool>? skip = null)
    {
        var root = new DirectoryInfo(sourceDirectory);
        if (!root.Exists)
        {
            throw new VmToolsException("IsoSourceNotFound", FailureKind.NotFound,
                $"The source directory '{sourceDirectory}' does not exist.") { Target = sourceDirectory };
        }

        var rootFull = Path.GetFullPath(root.FullName).TrimEnd('/');
        var rootReal = RealPath(rootFull);
        if (isoPrefix.Trim('/').Length > 0) AddDirectory(isoPrefix, ModeOf(rootFull, DefaultDirectoryMode));
        AddTreeBelow(rootReal, rootFull, isoPrefix.Trim('/'), "", skip ?? (_ => false));
        return this;
    }

    private void AddTreeBelow(string rootReal, string directory, string isoDirectory, string relativeDirectory, Func<string, bool> skip)
    {
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var relative = relativeDirectory.Length == 0 ? entry.Name : relativeDirectory + "/" + entry.Name;
            if (skip(relative)) continue;
            var isoPath = isoDirectory.Length == 0 ? entry.Name : isoDirectory + "/" + entry.Name;
            var target = entry.FullName;
            if (entry.LinkTarget is not null)
            {
                target = RealPath(entry.FullName);
                if (!(target == rootReal || target.StartsWith(rootReal + "/", StringComparison.Ordinal)))
                {
                    throw new VmToolsException("IsoPathEscapesRoot", FailureKind.InvalidArgument,
                        $"'{entry.FullName}' is a link to '{target}', outside the source directory '{rootReal}'.") { Target = entry.FullName };
                }
            }

            if (Directory.Exists(target))
            {
                AddDirectory(isoPath, ModeOf(target, DefaultDirectoryMode));
                AddTreeBelow(rootReal, entry.FullName, isoPath, relative, skip);
            }
            else if (File.Exists(target))
            {
                AddFile(isoPath, target);
            }
            else
            {
                throw new VmToolsException("IsoSourceNotFound", FailureKind.NotFound,
                    $"'{entry.FullName}' is not a regular file or directory (or is a dangling link).") { Target = entry.FullName };
            }
        }
    }

    /// <summary>The canonical path with every link resolved (realpath(3)), so "inside the root" compares real locations.</summary>
    private static string RealPath(string path)
    {
        var resolved = NativeRealPath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero) return Path.GetFullPath(path);
        try
        {
            return System.Runtime.InteropServices.Marshal.PtrToStringUTF8(resolved)!;
        }
        finally
        {
            NativeFree(resolved);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "realpath")]
    private static extern IntPtr NativeRealPath([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "free")]
    private static extern void NativeFree(IntPtr pointer);

    private static UnixFileMode ModeOf(string path, UnixFileMode fallback)
    {
        if (OperatingSystem.IsWindows()) return fallback;
        // Only permission bits travel; set-id and sticky bits have no business on a seed.
        return File.GetUnixFileMode(path) & (UnixFileMode)0x1FF;
    }

    private (IsoDirectoryNode Parent, string Name) ParentFor(string isoPath)
    {
        var parts = SplitPath(isoPath);
        if (parts.Count == 0) throw Escapes(isoPath, "it names the root, not a file");
        var parent = DirectoryFor(parts.Take(parts.Count - 1).ToList(), create: true, isoPath);
        return (parent, parts[^1]);
    }

    private IsoDirectoryNode DirectoryFor(IReadOnlyList<string> parts, bool create, string isoPath)
    {
        var dir = Root;
        foreach (var part in parts)
        {
            if (dir.Children.TryGetValue(part, out var existing))
            {
                dir = existing as IsoDirectoryNode ?? throw Collision(isoPath, existing.IsoPath);
                continue;
            }

            if (!create) throw new InvalidOperationException("missing directory");
            var sub = new IsoDirectoryNode(part, DefaultDirectoryMode);
            Attach(dir, sub, isoPath);
            dir = sub;
        }

        return dir;
    }

    private static void Attach(IsoDirectoryNode parent, IsoNode node, string isoPath)
    {
        if (parent.Children.TryGetValue(node.Name, out var existing)) throw Collision(isoPath, existing.IsoPath);
        if (node is IsoDirectoryNode && parent.Depth + 1 > MaxDepth)
        {
            throw new VmToolsException("IsoDirectoryTooDeep", FailureKind.LimitsExceeded,
                $"'{isoPath}' would nest directories {parent.Depth + 1} levels deep; ISO 9660 allows {MaxDepth} including the root.") { Target = isoPath };
        }

        node.Parent = parent;
        parent.Children.Add(node.Name, node);
    }

    private static List<string> SplitPath(string isoPath)
    {
        ArgumentNullException.ThrowIfNull(isoPath);
        var parts = new List<string>();
        foreach (var part in isoPath.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..") throw Escapes(isoPath, "'..' leads out of the image root");
            if (JolietName.Problem(part) is { } problem)
            {
                throw new VmToolsException("IsoFileNameInvalid", FailureKind.InvalidArgument,
                    $"The name '{part}' in '{isoPath}' cannot be recorded on the image: {problem}.") { Target = isoPath };
            }

            parts.Add(part);
        }

        return parts;
    }

    private static VmToolsException Escapes(string isoPath, string why)
        => new("IsoPathEscapesRoot", FailureKind.InvalidArgument, $"The image path '{isoPath}' is not inside the image: {why}.") { Target = isoPath };

    private static VmToolsException Collision(string isoPath, string existing)
        => new("IsoNameCollision", FailureKind.ResourceExists, $"'{isoPath}' maps to '{existing}', which is already on the image.") { Target = isoPath };

    internal static IEnumerable<IsoNode> Walk(IsoDirectoryNode dir)
    {
        foreach (var child in dir.Children.Values)
        {
            yield return child;
            if (child is IsoDirectoryNode sub)
            {
                foreach (var n in Walk(sub)) yield return n;
            }
        }
    }
}
