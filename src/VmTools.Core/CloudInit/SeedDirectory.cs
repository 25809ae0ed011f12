namespace VmTools.Core.CloudInit;

/// <summary>
/// Where a seed directory may be written, decided before anything moves: VmTools replaces only what it
/// wrote. A directory is written when it is new, empty, carries <see cref="MarkerName"/> (VmTools made
/// it), or holds nothing but seed-layout names; otherwise it is refused with <c>CloudInitOutputNotEmpty</c>
/// unless forced. Even forced, only seed-layout names are replaced: every other entry is kept.
/// </summary>
public sealed record SeedDirectory
{
    /// <summary>The small file VmTools writes into every seed directory: "this one is mine to replace".</summary>
    public const string MarkerName = ".vmtools-seed";

    /// <summary>What the marker says to a person who finds it.</summary>
    public const string MarkerText = "Written by VmTools New-CloudInitConfig. VmTools replaces the seed files here "
        + "(user-data, meta-data, network-config, " + NoCloudSeed.PayloadDirectory + ") and nothing else.\n";

    private const int NamesInMessage = 5;

    /// <summary>The names a seed directory holds: what VmTools writes, and its own staging leftovers.</summary>
    public static bool IsLayoutName(string name)
        => name is "user-data" or "meta-data" or "network-config" or NoCloudSeed.PayloadDirectory
           || name.StartsWith(MarkerName, StringComparison.Ordinal);

    public string Path { get; }

    /// <summary>False when the directory does not exist yet (it is created 0700, whole, by one rename).</summary>
    public bool Exists { get; }

    /// <summary>Seed-layout entries present now, which the write replaces (stale ones are removed).</summary>
    public IReadOnlyList<string> Replaced { get; }

    /// <summary>Entries VmTools did not write, kept untouched (only ever non-empty with the marker or -Force).</summary>
    public IReadOnlyList<string> Kept { get; }

    private SeedDirectory(string path, bool exists, IReadOnlyList<string> replaced, IReadOnlyList<string> kept)
        => (Path, Exists, Replaced, Kept) = (path, exists, replaced, kept);

    /// <summary>What ShouldProcess shows: the directory and what will be replaced.</summary>
    public string Action
    {
        get
        {
            if (!Exists) return "Create cloud-init seed directory";
            var action = Replaced.Count == 0
                ? "Write cloud-init seed files into existing directory"
                : "Replace cloud-init seed files " + string.Join(", ", Replaced.Where(n => n != MarkerName));
            return Kept.Count == 0 ? action : action + $" (keeping {Kept.Count} other entries: {Sample(Kept)})";
        }
    }

    /// <summary>
    /// Looks at <paramref name="directory"/> and decides; throws <c>CloudInitOutputNotEmpty</c> (naming a few
    /// of the entries found) when it holds files VmTools did not write, no marker, and <paramref name="force"/> is off.
    /// </summary>
    public static SeedDirectory Plan(string directory, bool force)
    {
        var path = System.IO.Path.GetFullPath(directory);
        if (path.Length > 1) path = path.TrimEnd('/');
        if (File.Exists(path))
        {
            throw new VmToolsException("CloudInitOutputNotDirectory", FailureKind.InvalidArgument,
                $"The seed output '{path}' is a file, not a directory.") { Target = path };
        }

        if (!Directory.Exists(path)) return new SeedDirectory(path, exists: false, Array.Empty<string>(), Array.Empty<string>());
        var names = Directory.EnumerateFileSystemEntries(path).Select(System.IO.Path.GetFileName).OfType<string>()
            .OrderBy(n => n, StringComparer.Ordinal).ToList();
        var replaced = names.Where(IsLayoutName).ToList();
        var others = names.Where(n => !IsLayoutName(n)).ToList();
        var marked = names.Contains(MarkerName);
        if (others.Count > 0 && !marked && !force)
        {
            throw new VmToolsException("CloudInitOutputNotEmpty", FailureKind.ResourceExists,
                $"The seed output directory '{path}' holds {others.Count} entries VmTools did not write ({Sample(others)}). "
                + "VmTools writes a seed only into a new or empty directory or one it wrote before; choose another -OutputDirectory "
                + "(or CLOUD_INIT_DIR), or add -Force to write the seed files beside those entries (they are kept).") { Target = path };
        }

        return new SeedDirectory(path, exists: true, replaced, others);
    }

    private static string Sample(IReadOnlyList<string> names)
        => string.Join(", ", names.Take(NamesInMessage)) + (names.Count > NamesInMessage ? $", and {names.Count - NamesInMessage} more" : "");
}
