using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace VmTools.Completers;

/// <summary>Completes -Tag from tags recorded for the -Repository being typed (or any repository).</summary>
public sealed class CachedTagCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        => StateCompletion.Offer(wordToComplete, "SELECT tag FROM image_refs WHERE $r IS NULL OR registry || '/' || repository = $r", ("$r", fakeBoundParameters["Repository"] as string));
}
