using System.Text.RegularExpressions;

namespace VmTools.Core.Volumes.Replication;

/// <summary>
/// The ZFS dataset and snapshot name grammar, checked before a name goes into a command string a
/// remote shell parses. The grammar (letters, digits, '_', '-', '.', ':' in components joined by
/// '/', a pool name starting with a letter) has no quote, space or shell metacharacter, so a checked
/// name inside single quotes is exactly one word to any POSIX shell.
/// </summary>
public static partial class ZfsName
{
    /// <summary>ZFS_MAX_DATASET_NAME_LEN less the terminating NUL.</summary>
    public const int MaxLength = 255;

    private static readonly string[] ReservedPoolNames = { "mirror", "raidz", "raidz1", "raidz2", "raidz3", "draid", "spare", "log", "cache", "special", "dedup" };

    /// <summary>Returns <paramref name="dataset"/> when it is a filesystem name (pool or pool/child/...), else throws <c>VolumeDatasetNameInvalid</c>.</summary>
    public static string ValidateDataset(string dataset)
    {
        if (string.IsNullOrEmpty(dataset) || dataset.Length > MaxLength || !Dataset().IsMatch(dataset)) throw Invalid(dataset, "a dataset name (pool/child, components of letters, digits, '_', '-', '.', ':')");
        var pool = dataset.Split('/')[0];
        if (ReservedPoolNames.Contains(pool, StringComparer.Ordinal) || DiskLike().IsMatch(pool)) throw Invalid(dataset, "a pool name that is not a reserved word");
        if (dataset.Split('/').Any(c => c is "." or "..")) throw Invalid(dataset, "components other than '.' and '..'");
        return dataset;
    }

    /// <summary>Returns a snapshot's short name (after '@') when it follows the grammar, else throws <c>VolumeDatasetNameInvalid</c>.</summary>
    public static string ValidateSnapshotName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength || !Component().IsMatch(name)) throw Invalid(name, "a snapshot name of letters, digits, '_', '-', '.', ':'");
        return name;
    }

    /// <summary>The name single-quoted for a remote shell, after validation (dataset or dataset@snapshot).</summary>
    public static string Quote(string name)
    {
        var at = name.IndexOf('@');
        if (at < 0) ValidateDataset(name);
        else
        {
            ValidateDataset(name[..at]);
            ValidateSnapshotName(name[(at + 1)..]);
        }

        return "'" + name + "'";
    }

    private static VmToolsException Invalid(string name, string expected)
        => new("VolumeDatasetNameInvalid", FailureKind.InvalidArgument, $"'{name}' is not a valid ZFS name: expected {expected}.") { Target = name };

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex Dataset();

    [GeneratedRegex(@"^[A-Za-z0-9_.:-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex Component();

    /// <summary>zpool reads c0, c1t0d0... as disk names.</summary>
    [GeneratedRegex(@"^c[0-9]", RegexOptions.CultureInvariant)]
    private static partial Regex DiskLike();
}
