namespace VmTools.HelpBuilder;

/// <summary>
/// What a compiled cmdlet declares about itself, as PowerShell's parameter binder sees it: the
/// structure the MAML help must agree with. Prose lives in the hand-written fragments instead.
/// </summary>
public sealed record CmdletShape(
    string Name,
    string Verb,
    string Noun,
    string? DefaultParameterSetName,
    bool SupportsShouldProcess,
    IReadOnlyList<string> OutputTypeNames,
    IReadOnlyList<ParameterShape> Parameters)
{
    /// <summary>The parameter set every parameter without a named set belongs to.</summary>
    public const string AllParameterSets = "__AllParameterSets";

    /// <summary>Named sets in declaration order, the default (named by a parameter or not) first; one unnamed set when none is named.</summary>
    public IReadOnlyList<string> ParameterSetNames
    {
        get
        {
            var named = Parameters.SelectMany(p => p.Sets).Select(s => s.SetName)
                .Where(n => n != AllParameterSets).Distinct().ToList();
            if (named.Count == 0)
                return [AllParameterSets];
            // PowerShell makes the default set a set of its own even when no parameter names it
            // (ConvertTo-KubeVirtVirtualMachine: objects by default, -AsYaml and -AsJson in their own sets).
            if (DefaultParameterSetName is { } d)
            {
                named.Remove(d);
                named.Insert(0, d);
            }
            return named;
        }
    }
}

/// <summary>One cmdlet parameter and its per-set binding rules ([Parameter] may appear once per set).</summary>
public sealed record ParameterShape(
    string Name,
    TypeShape Type,
    IReadOnlyList<string> Aliases,
    bool SupportsWildcards,
    IReadOnlyList<string> AllowedValues,
    IReadOnlyList<ParameterSetEntry> Sets)
{
    public bool IsSwitch => Type.FullName == "System.Management.Automation.SwitchParameter";

    /// <summary>The entry that applies in a set: the set's own, else the all-sets one.</summary>
    public ParameterSetEntry? In(string setName) =>
        Sets.FirstOrDefault(s => s.SetName == setName)
        ?? Sets.FirstOrDefault(s => s.SetName == CmdletShape.AllParameterSets);
}

/// <summary>The [Parameter] attribute of one parameter in one set.</summary>
public sealed record ParameterSetEntry(
    string SetName,
    bool Mandatory,
    int? Position,
    bool ValueFromPipeline,
    bool ValueFromPipelineByPropertyName)
{
    public string PipelineInput => (ValueFromPipeline, ValueFromPipelineByPropertyName) switch
    {
        (true, true) => "True (ByValue, ByPropertyName)",
        (true, false) => "True (ByValue)",
        (false, true) => "True (ByPropertyName)",
        _ => "False",
    };
}

/// <summary>A parameter's type as help shows it: the short name in syntax, the full name in detail.</summary>
public sealed record TypeShape(string Name, string FullName);
