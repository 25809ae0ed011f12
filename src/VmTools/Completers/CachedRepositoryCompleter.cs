using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace VmTools.Completers;

/// <summary>Completes -Repository from the repositories this machine has pulled from or pushed to.</summary>
public sealed class CachedRepositoryCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        => StateCompletion.Offer(wordToComplete, "SELECT DISTINCT registry || '/' || repository FROM image_refs");
}
