using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using VmTools.Core.State;

namespace VmTools.Completers;

/// <summary>Completes -Repository from the repositories this machine has pulled from or pushed to.</summary>
public sealed class CachedRepositoryCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var paths = VmToolsPaths.FromEnvironment();
        if (!File.Exists(paths.DatabasePath)) yield break;
        List<string> names;
        using (var db = StateDb.Open(paths.DatabasePath))
        {
            using var cmd = db.Command("SELECT DISTINCT registry || '/' || repository FROM image_refs ORDER BY 1");
            using var r = cmd.ExecuteReader();
            names = new List<string>();
            while (r.Read()) names.Add(r.GetString(0));
        }

        foreach (var n in names.Where(n => n.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase)))
        {
            yield return new CompletionResult(n, n, CompletionResultType.ParameterValue, n);
        }
    }
}
