using System.Text;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// ECMA-119 level 1 identifiers (7.5, 7.6): upper-case d-characters, 8.3 for files with the ';1'
/// version, 8 for directories. Only readers that ignore Rock Ridge and Joliet see them, so they are
/// made unique within a directory by a numeric tail rather than kept meaningful.
/// </summary>
internal static class PrimaryName
{
    public static void Assign(IsoDirectoryNode directory)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var child in directory.Children.Values)
        {
            var isFile = child is IsoFileNode;
            var (stem, ext) = Split(child.Name, isFile);
            var candidate = Compose(stem, ext, isFile);
            for (var n = 1; !taken.Add(candidate); n++)
            {
                var suffix = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var keep = Math.Max(0, Math.Min(stem.Length, 8 - suffix.Length));
                candidate = Compose(stem[..keep] + suffix, ext, isFile);
            }

            child.PrimaryName = candidate;
            if (child is IsoDirectoryNode sub) Assign(sub);
        }
    }

    private static (string Stem, string Ext) Split(string name, bool isFile)
    {
        var dot = isFile ? name.LastIndexOf('.') : -1;
        var stem = dot > 0 ? name[..dot] : name;
        var ext = dot > 0 ? name[(dot + 1)..] : string.Empty;
        stem = DCharacters(stem, 8);
        ext = DCharacters(ext, 3);
        if (stem.Length == 0) stem = "_";
        return (stem, ext);
    }

    private static string Compose(string stem, string ext, bool isFile) => isFile ? stem + "." + ext + ";1" : stem;

    private static string DCharacters(string s, int max)
    {
        var sb = new StringBuilder(max);
        foreach (var c in s)
        {
            if (sb.Length == max) break;
            var u = char.ToUpperInvariant(c);
            sb.Append(u is >= 'A' and <= 'Z' or >= '0' and <= '9' ? u : '_');
        }

        return sb.ToString();
    }

    public static byte[] Encode(string primaryName) => Encoding.ASCII.GetBytes(primaryName);
}
