namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// Plans where everything goes before a byte is written, so the image can be written front to
/// back in one pass: system area, descriptors (16–18), four path tables, the primary directories
/// with their Rock Ridge continuation areas, the Joliet directories, then file data. Both
/// hierarchies point at the same file extents.
/// </summary>
internal sealed class IsoLayout
{
    private const int FirstFreeSector = 19;

    private readonly Dictionary<IsoNode, long> _primaryExtent = new();
    private readonly Dictionary<IsoNode, long> _jolietExtent = new();
    private readonly Dictionary<IsoNode, long> _primarySectors = new();
    private readonly Dictionary<IsoNode, long> _jolietSectors = new();
    private readonly Dictionary<IsoFileNode, long> _fileExtent = new();

    public IsoLayout(IsoContent content, DateTimeOffset time)
    {
        Root = content.Root;
        Time = time;
        PrimaryName.Assign(Root);
        var serial = 1;
        Root.SerialNumber = serial++;
        foreach (var node in IsoContent.Walk(Root)) node.SerialNumber = serial++;

        PrimaryDirectories = BreadthFirst(Root, n => PrimaryName.Encode(n.PrimaryName));
        JolietDirectories = BreadthFirst(Root, n => JolietName.Encode(n.Name));
        Files = IsoContent.Walk(Root).OfType<IsoFileNode>().ToList();

        // Sizes first: record lengths do not depend on where things land.
        PrimaryRecords = PrimaryDirectories.ToDictionary(d => d, PlanPrimaryRecords);
        JolietRecords = JolietDirectories.ToDictionary(d => d, PlanJolietRecords);
        var primaryTable = PathTableFor(PrimaryDirectories, n => PrimaryName.Encode(n.PrimaryName), _ => 0);
        var jolietTable = PathTableFor(JolietDirectories, n => JolietName.Encode(n.Name), _ => 0);
        PrimaryPathTableSize = PathTable.Size(primaryTable);
        JolietPathTableSize = PathTable.Size(jolietTable);

        long next = FirstFreeSector;
        PrimaryPathTableL = next; next += IsoEncoding.SectorsFor(PrimaryPathTableSize);
        PrimaryPathTableM = next; next += IsoEncoding.SectorsFor(PrimaryPathTableSize);
        JolietPathTableL = next; next += IsoEncoding.SectorsFor(JolietPathTableSize);
        JolietPathTableM = next; next += IsoEncoding.SectorsFor(JolietPathTableSize);

        foreach (var dir in PrimaryDirectories)
        {
            _primaryExtent[dir] = next;
            _primarySectors[dir] = SectorsFor(PrimaryRecords[dir]);
            next += _primarySectors[dir];
        }

        ContinuationStart = next;
        next += PlaceContinuations(ContinuationStart);
        ContinuationEnd = next;

        foreach (var dir in JolietDirectories)
        {
            _jolietExtent[dir] = next;
            _jolietSectors[dir] = SectorsFor(JolietRecords[dir]);
            next += _jolietSectors[dir];
        }

        foreach (var file in Files)
        {
            _fileExtent[file] = next;
            next += IsoEncoding.SectorsFor(file.Size);
        }

        TotalSectors = next;
        PrimaryPathTable = PathTableFor(PrimaryDirectories, n => PrimaryName.Encode(n.PrimaryName), d => _primaryExtent[d]);
        JolietPathTable = PathTableFor(JolietDirectories, n => JolietName.Encode(n.Name), d => _jolietExtent[d]);
    }

    public IsoDirectoryNode Root { get; }

    public DateTimeOffset Time { get; }

    public IReadOnlyList<IsoDirectoryNode> PrimaryDirectories { get; }

    public IReadOnlyList<IsoDirectoryNode> JolietDirectories { get; }

    public IReadOnlyList<IsoFileNode> Files { get; }

    public Dictionary<IsoDirectoryNode, List<PlannedRecord>> PrimaryRecords { get; }

    public Dictionary<IsoDirectoryNode, List<PlannedRecord>> JolietRecords { get; }

    public IReadOnlyList<PathTable.Entry> PrimaryPathTable { get; }

    public IReadOnlyList<PathTable.Entry> JolietPathTable { get; }

    public int PrimaryPathTableSize { get; }

    public int JolietPathTableSize { get; }

    public long PrimaryPathTableL { get; }

    public long PrimaryPathTableM { get; }

    public long JolietPathTableL { get; }

    public long JolietPathTableM { get; }

    public long ContinuationStart { get; }

    public long ContinuationEnd { get; }

    public long TotalSectors { get; }

    public long FileExtent(IsoFileNode file) => _fileExtent[file];

    public long PrimaryExtent(IsoDirectoryNode dir) => _primaryExtent[dir];

    public long JolietExtent(IsoDirectoryNode dir) => _jolietExtent[dir];

    /// <summary>The finished record, with extents and continuation pointers filled in.</summary>
    public DirectoryRecord Resolve(PlannedRecord r, bool joliet)
    {
        long extent, length;
        if (r.Target is IsoDirectoryNode d)
        {
            extent = joliet ? _jolietExtent[d] : _primaryExtent[d];
            length = (joliet ? _jolietSectors[d] : _primarySectors[d]) * IsoEncoding.SectorSize;
        }
        else
        {
            var f = (IsoFileNode)r.Target;
            extent = _fileExtent[f];
            length = f.Size;
        }

        var systemUse = r.Inline;
        if (r.Continuation is { } c)
        {
            var ce = SuspEntries.Continuation(r.ContinuationSector, r.ContinuationOffset, c.Length);
            systemUse = Concat(new[] { systemUse, ce });
        }

        return new DirectoryRecord(r.Identifier, extent, length, r.Target is IsoDirectoryNode, Time, systemUse);
    }

    private static long SectorsFor(List<PlannedRecord> records)
    {
        // A record never crosses a sector boundary (ECMA-119 6.8.1.1).
        long sectors = 1;
        var used = 0;
        foreach (var r in records)
        {
            var len = r.Length;
            if (used + len > IsoEncoding.SectorSize)
            {
                sectors++;
                used = 0;
            }

            used += len;
        }

        return sectors;
    }

    private long PlaceContinuations(long start)
    {
        long sector = 0;
        var offset = 0;
        var any = false;
        foreach (var dir in PrimaryDirectories)
        {
            foreach (var r in PrimaryRecords[dir])
            {
                if (r.Continuation is not { } c) continue;
                any = true;
                if (offset + c.Length > IsoEncoding.SectorSize)
                {
                    sector++;
                    offset = 0;
                }

                r.ContinuationSector = start + sector;
                r.ContinuationOffset = offset;
                offset += c.Length;
            }
        }

        return any ? sector + 1 : 0;
    }

    private List<PlannedRecord> PlanPrimaryRecords(IsoDirectoryNode dir)
    {
        var records = new List<PlannedRecord>();
        var parent = dir.Parent ?? dir;
        var self = new List<byte[]>();
        if (dir == Root) self.Add(SuspEntries.SharingProtocol());
        self.Add(SuspEntries.PosixAttributes(dir, Links(dir)));
        self.Add(SuspEntries.Timestamps(Time));
        records.Add(dir == Root
            ? new PlannedRecord(DirectoryRecord.Self, dir, Concat(self), SuspEntries.ExtensionReference())
            : Split(DirectoryRecord.Self, dir, self));
        records.Add(Split(DirectoryRecord.ParentOf, parent, new List<byte[]> { SuspEntries.PosixAttributes(parent, Links(parent)), SuspEntries.Timestamps(Time) }));
        foreach (var child in dir.Children.Values.OrderBy(c => c.PrimaryName, StringComparer.Ordinal))
        {
            var links = child is IsoDirectoryNode sub ? Links(sub) : 1;
            records.Add(Split(PrimaryName.Encode(child.PrimaryName), child, new List<byte[]>
            {
                SuspEntries.PosixAttributes(child, links),
                SuspEntries.Timestamps(Time),
                SuspEntries.AlternateName(child.Name),
            }));
        }

        return records;
    }

    private static List<PlannedRecord> PlanJolietRecords(IsoDirectoryNode dir)
    {
        var records = new List<PlannedRecord>
        {
            new(DirectoryRecord.Self, dir, Array.Empty<byte>(), null),
            new(DirectoryRecord.ParentOf, dir.Parent ?? dir, Array.Empty<byte>(), null),
        };
        // Keyed on the node, not on (node, name) tuples: a sort over a value type is JIT-compiled on first use.
        foreach (var child in dir.Children.Values.OrderBy(c => JolietName.Encode(c.Name), ByteOrder.Instance))
        {
            records.Add(new PlannedRecord(JolietName.Encode(child.Name), child, Array.Empty<byte>(), null));
        }

        return records;
    }

    /// <summary>Keeps SUSP entries in the record while they fit; the rest moves to a continuation area behind a CE entry.</summary>
    private static PlannedRecord Split(byte[] identifier, IsoNode target, List<byte[]> entries)
    {
        var room = DirectoryRecord.MaxLength - 1 - DirectoryRecord.BaseLength(identifier.Length);
        var length = 0;
        foreach (var e in entries) length += e.Length;
        if (length <= room) return new PlannedRecord(identifier, target, Concat(entries), null);
        var inline = new List<byte[]>();
        var used = 0;
        var i = 0;
        for (; i < entries.Count && used + entries[i].Length + SuspEntries.ContinuationLength <= room; i++)
        {
            inline.Add(entries[i]);
            used += entries[i].Length;
        }

        return new PlannedRecord(identifier, target, Concat(inline), Concat(entries.Skip(i)));
    }

    private static int Links(IsoDirectoryNode dir) => 2 + dir.Children.Values.Count(c => c is IsoDirectoryNode);

    private static byte[] Concat(IEnumerable<byte[]> parts)
    {
        var list = parts.ToList();
        var length = 0;
        foreach (var p in list) length += p.Length;
        var bytes = new byte[length];
        var at = 0;
        foreach (var p in list)
        {
            p.CopyTo(bytes, at);
            at += p.Length;
        }

        return bytes;
    }

    private static List<IsoDirectoryNode> BreadthFirst(IsoDirectoryNode root, Func<IsoNode, byte[]> identifier)
    {
        var order = new List<IsoDirectoryNode> { root };
        for (var i = 0; i < order.Count; i++)
        {
            order.AddRange(order[i].Children.Values.OfType<IsoDirectoryNode>().OrderBy(d => identifier(d), ByteOrder.Instance));
        }

        return order;
    }

    private static List<PathTable.Entry> PathTableFor(IReadOnlyList<IsoDirectoryNode> order, Func<IsoNode, byte[]> identifier, Func<IsoDirectoryNode, long> extent)
    {
        var number = new Dictionary<IsoDirectoryNode, int>();
        var entries = new List<PathTable.Entry>();
        foreach (var dir in order)
        {
            number[dir] = entries.Count + 1;
            entries.Add(dir.Parent is null
                ? new PathTable.Entry(DirectoryRecord.Self, 1, extent(dir))
                : new PathTable.Entry(identifier(dir), number[dir.Parent], extent(dir)));
        }

        return entries;
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}

/// <summary>A directory record whose extent and continuation position are known only after layout.</summary>
internal sealed class PlannedRecord
{
    public PlannedRecord(byte[] identifier, IsoNode target, byte[] inline, byte[]? continuation)
    {
        Identifier = identifier;
        Target = target;
        Inline = inline;
        Continuation = continuation;
    }

    public byte[] Identifier { get; }

    public IsoNode Target { get; }

    public byte[] Inline { get; }

    public byte[]? Continuation { get; }

    public long ContinuationSector { get; set; }

    public int ContinuationOffset { get; set; }

    public int Length
    {
        get
        {
            var n = DirectoryRecord.BaseLength(Identifier.Length) + Inline.Length + (Continuation is null ? 0 : SuspEntries.ContinuationLength);
            return n + (n % 2);
        }
    }
}
