using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using VmTools.Core.CloudInit.Iso9660;

namespace VmTools.Completers;

/// <summary>The labels cloud-init's NoCloud datasource recognises (it looks for both cases).</summary>
public sealed class VolumeLabelCompleter : IArgumentCompleter
{
    private static readonly string[] Labels = { IsoImageOptions.NoCloudLabel, IsoImageOptions.NoCloudLabel.ToUpperInvariant() };

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        => Labels.Where(l => l.StartsWith(wordToComplete, StringComparison.Ordinal))
            .Select(l => new CompletionResult(l, l, CompletionResultType.ParameterValue, "NoCloud seed label"));
}
