using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using VmTools.Core.State;

namespace VmTools.Completers;

/// <summary>Completes -Tag from tags recorded for the -Repository being typed (or any repository).</summary>
public sealed class CachedTagCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var paths = VmToolsPaths.FromEnvironment();
        if (!File.Exists(paths.DatabasePath)) yield break;
        var repository = fakeBoundParameters["Repository"] as string;
        var tags = new SortedSet<string>(StringComparer.Ordinal);
        using (var db = StateDb.Open(paths.DatabasePath))
        {
            using var cmd = db.Command("SELECT tag FROM image_refs WHERE $r IS NULL OR registry || '/' || repository = $r", null, ("$r", repository));
            using var r = cmd.ExecuteReader();
            while (r.Read()) tags.Add(r.GetString(0));
        }

        foreach (var t in tags.Where(t => t.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase)))
        {
            yield return new CompletionResult(t, t, CompletionResultType.ParameterValue, t);
        }
    }
}
