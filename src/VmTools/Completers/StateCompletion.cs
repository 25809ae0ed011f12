using System.Management.Automation;
using VmTools.Core.State;

namespace VmTools.Completers;

/// <summary>
/// What completers share: read a list of names from the state database (if there is one yet) and offer those
/// starting with what was typed. Completion must never create state, so a missing database offers nothing.
/// </summary>
internal static class StateCompletion
{
    public static IEnumerable<CompletionResult> Offer(string wordToComplete, string sql, params (string Name, object? Value)[] parameters)
    {
        var paths = VmToolsPaths.FromEnvironment();
        if (!File.Exists(paths.DatabasePath)) return Array.Empty<CompletionResult>();
        var names = new SortedSet<string>(StringComparer.Ordinal);
        using (var db = StateDb.Open(paths.DatabasePath))
        using (var cmd = db.Command(sql, null, parameters))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) names.Add(r.GetString(0));
        }

        var typed = wordToComplete.Trim('\'', '"');
        return names.Where(n => n.StartsWith(typed, StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n)).ToList();
    }
}
