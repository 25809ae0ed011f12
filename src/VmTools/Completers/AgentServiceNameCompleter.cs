using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using VmTools.Core.CloudInit;

namespace VmTools.Completers;

/// <summary>The agent unit the setup script starts by default.</summary>
public sealed class AgentServiceNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        => new[] { AgentPayload.DefaultServiceName }.Where(n => n.StartsWith(wordToComplete, StringComparison.Ordinal))
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, "default agent service"));
}
