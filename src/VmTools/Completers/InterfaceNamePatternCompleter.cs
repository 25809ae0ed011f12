using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace VmTools.Completers;

/// <summary>Interface-name globs that match the names real guests use (predictable names, or the old eth style).</summary>
public sealed class InterfaceNamePatternCompleter : IArgumentCompleter
{
    private static readonly (string Pattern, string Meaning)[] Known =
    {
        ("e*", "every Ethernet name: eth0, ens3, enp0s2 (default)"),
        ("en*", "predictable names only: ens3, enp0s2, eno1"),
        ("eth*", "kernel names: eth0"),
        ("ens*", "slot-based names: ens3"),
        ("enp*", "PCI path names: enp0s2"),
    };

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        => Known.Where(k => k.Pattern.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
            .Select(k => new CompletionResult("'" + k.Pattern + "'", k.Pattern, CompletionResultType.ParameterValue, k.Meaning));
}
