using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using VmTools.Core.State;
using VmTools.Core.Vms;

namespace VmTools.Completers;

/// <summary>Completes VM names from the state database of the current VMTOOLS_HOME.</summary>
public sealed class FlightVmNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var paths = VmToolsPaths.FromEnvironment();
        if (!File.Exists(paths.DatabasePath)) return Array.Empty<CompletionResult>();
        try
        {
            using var db = StateDb.Open(paths.DatabasePath);
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            return new VmStore(db, paths).List().Where(v => pattern.IsMatch(v.Name))
                .Select(v => new CompletionResult(v.Name, v.Name, CompletionResultType.ParameterValue, $"{v.Name} ({v.State})")).ToList();
        }
        catch (Core.VmToolsException)
        {
            return Array.Empty<CompletionResult>();
        }
    }
}
