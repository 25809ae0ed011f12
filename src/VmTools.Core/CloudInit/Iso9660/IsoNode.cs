namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>A directory or file in the image tree, with the three names it is recorded under.</summary>
internal abstract class IsoNode
{
    protected IsoNode(string name, UnixFileMode mode)
    {
        Name = name;
        Mode = mode;
    }

    /// <summary>The real name: recorded by Rock Ridge (NM) and, as UCS-2, by Joliet.</summary>
    public string Name { get; }

    public UnixFileMode Mode { get; set; }

    public IsoDirectoryNode? Parent { get; set; }

    /// <summary>The ECMA-119 level 1 identifier (8.3, d-characters), unique within the parent.</summary>
    public string PrimaryName { get; set; } = string.Empty;

    /// <summary>The POSIX serial number recorded in PX; unique per node.</summary>
    public int SerialNumber { get; set; }

    public string IsoPath => Parent is null ? "/" : (Parent.Parent is null ? "/" : Parent.IsoPath + "/") + Name;
}

internal sealed class IsoDirectoryNode : IsoNode
{
    public IsoDirectoryNode(string name, UnixFileMode mode) : base(name, mode)
    {
    }

    /// <summary>By name, in ordinal order. (A SortedList: SortedDictionary's code over its key-value pairs is JIT-compiled on first use.)</summary>
    public SortedList<string, IsoNode> Children { get; } = new(StringComparer.Ordinal);

    public int Depth => Parent is null ? 1 : Parent.Depth + 1;
}

internal sealed class IsoFileNode : IsoNode
{
    public IsoFileNode(string name, UnixFileMode mode, string? sourcePath, byte[]? content, long size) : base(name, mode)
    {
        SourcePath = sourcePath;
        Content = content;
        Size = size;
    }

    /// <summary>Streamed from disk at write time; never held in memory.</summary>
    public string? SourcePath { get; }

    /// <summary>Small generated files (user-data, meta-data) given as bytes.</summary>
    public byte[]? Content { get; }

    public long Size { get; }
}
