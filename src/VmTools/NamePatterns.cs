using System.Management.Automation;

namespace VmTools;

/// <summary>
/// PowerShell's convention for -Name parameters, in one place for every VM and volume cmdlet: a
/// wildcard pattern expands to the known names it matches (none: nothing, silently); a literal name
/// is passed through unchanged, so the core's own lookup reports it as not found with its specific
/// ErrorId (VmNotFound, VolumeNotFound) and message. Each name is produced once per invocation.
/// </summary>
public static class NamePatterns
{
    /// <param name="requested">The names as given (literal or patterns).</param>
    /// <param name="known">All candidates; read only if a pattern is given.</param>
    /// <param name="name">The name a candidate is produced as.</param>
    /// <param name="alsoMatches">Another key a pattern may match (a volume's name besides its id).</param>
    public static IEnumerable<string> Expand<T>(IEnumerable<string> requested, Func<IReadOnlyList<T>> known, Func<T, string> name, Func<T, string?>? alsoMatches = null)
    {
        IReadOnlyList<T>? all = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in requested)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(r))
            {
                var literal = WildcardPattern.Unescape(r);
                if (seen.Add(literal)) yield return literal;
                continue;
            }

            var pattern = WildcardPattern.Get(r, WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant);
            all ??= known();
            foreach (var candidate in all)
            {
                var n = name(candidate);
                var matches = pattern.IsMatch(n) || (alsoMatches?.Invoke(candidate) is { } other && pattern.IsMatch(other));
                if (matches && seen.Add(n)) yield return n;
            }
        }
    }
}
