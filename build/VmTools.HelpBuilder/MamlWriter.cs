using System.Xml.Linq;

namespace VmTools.HelpBuilder;

/// <summary>
/// Writes one cmdlet's MAML: the fragment's prose around syntax, parameter detail, inputs, outputs
/// and related links generated from the compiled cmdlet, in the element order PowerShell expects.
/// </summary>
public static class MamlWriter
{
    /// <summary>The conceptual topic every cmdlet links to.</summary>
    public const string AboutTopic = "about_VmTools";

    // -WhatIf and -Confirm come from SupportsShouldProcess, not from the cmdlet's own code; their
    // meaning is the same everywhere, so a fragment need not repeat it (it may, to say more).
    private static readonly Dictionary<string, string> ShouldProcessDescriptions = new()
    {
        ["WhatIf"] = "Shows what the cmdlet would change, without changing anything.",
        ["Confirm"] = "Asks for confirmation before each change.",
    };

    public static XElement Command(CmdletShape cmdlet, HelpFragment fragment, IReadOnlyList<string> related)
    {
        var parameters = Parameters(cmdlet);
        var descriptions = fragment.Parameters.Where(p => !Maml.IsBlank(p.Description))
            .ToDictionary(p => p.Name, p => p.Description!, StringComparer.OrdinalIgnoreCase);
        XElement DescriptionOf(ParameterShape p) =>
            descriptions.TryGetValue(p.Name, out var d) ? new XElement(d) : Maml.Description(ShouldProcessDescriptions[p.Name]);

        // Parameter detail follows the fragment's order (an author's choice); generated ones go last.
        var fragmentOrder = fragment.Parameters.Select(p => p.Name).ToList();
        var detailOrder = parameters.OrderBy(p => fragmentOrder.FindIndex(n => string.Equals(n, p.Name, StringComparison.OrdinalIgnoreCase)) is var i and >= 0 ? i : int.MaxValue);

        return new XElement(Maml.Command + "command",
            Maml.Declarations,
            new XElement(fragment.Details!),
            new XElement(fragment.Description!),
            new XElement(Maml.Command + "syntax",
                cmdlet.ParameterSetNames.Select(set => SyntaxItem(cmdlet, parameters, set))),
            new XElement(Maml.Command + "parameters",
                detailOrder.Select(p => ParameterDetail(p, DescriptionOf(p)))),
            new XElement(Maml.Command + "inputTypes", InputTypes(parameters)),
            new XElement(Maml.Command + "returnValues",
                cmdlet.OutputTypeNames.Select(n => new XElement(Maml.Command + "returnValue",
                    new XElement(Maml.Dev + "type", new XElement(Maml.Doc + "name", n))))),
            fragment.Notes is { } notes ? new XElement(notes) : null,
            new XElement(fragment.Examples!),
            new XElement(Maml.Command + "relatedLinks",
                related.Append(AboutTopic).Select(name => new XElement(Maml.Doc + "navigationLink",
                    new XElement(Maml.Doc + "linkText", name),
                    new XElement(Maml.Doc + "uri")))));
    }

    /// <summary>The cmdlet's own parameters plus -WhatIf/-Confirm when it supports ShouldProcess, as Get-Command lists them.</summary>
    public static IReadOnlyList<ParameterShape> Parameters(CmdletShape cmdlet)
    {
        if (!cmdlet.SupportsShouldProcess)
            return cmdlet.Parameters;
        var switchType = new TypeShape("SwitchParameter", "System.Management.Automation.SwitchParameter");
        ParameterShape Common(string name, string alias) => new(name, switchType, [alias], false, [],
            [new ParameterSetEntry(CmdletShape.AllParameterSets, false, null, false, false)]);
        return [.. cmdlet.Parameters, Common("WhatIf", "wi"), Common("Confirm", "cf")];
    }

    /// <summary>
    /// One line of SYNTAX: the set's parameters in the order PowerShell shows them (positional by
    /// position, then mandatory named, then the rest, each group in declaration order).
    /// </summary>
    private static XElement SyntaxItem(CmdletShape cmdlet, IReadOnlyList<ParameterShape> parameters, string set)
    {
        var inSet = parameters.Select((p, index) => (Parameter: p, Entry: p.In(set), index))
            .Where(x => x.Entry is not null)
            .OrderBy(x => x.Entry!.Position is null ? 1 : 0)
            .ThenBy(x => x.Entry!.Position ?? 0)
            .ThenBy(x => x.Entry!.Mandatory ? 0 : 1)
            .ThenBy(x => x.index);
        return new XElement(Maml.Command + "syntaxItem",
            new XElement(Maml.Doc + "name", cmdlet.Name),
            inSet.Select(x => new XElement(Maml.Command + "parameter",
                StructuralAttributes(x.Parameter, x.Entry!.Mandatory, x.Entry.Position, x.Entry.PipelineInput),
                new XElement(Maml.Doc + "name", x.Parameter.Name),
                // A switch shows as [-Name]; a value as -Name <Type>, or -Name {A | B} for a closed set.
                x.Parameter.IsSwitch ? null : ValueGroup(x.Parameter),
                x.Parameter.IsSwitch ? null : Value(x.Parameter),
                DevType(x.Parameter))));
    }

    /// <summary>
    /// A parameter across all its sets: required only when every set requires it; the first
    /// position any set gives it; the widest pipeline input.
    /// </summary>
    private static XElement ParameterDetail(ParameterShape parameter, XElement description)
    {
        var required = parameter.Sets.All(s => s.Mandatory);
        var position = parameter.Sets.Select(s => s.Position).FirstOrDefault(p => p is not null);
        var merged = new ParameterSetEntry("", required, position,
            parameter.Sets.Any(s => s.ValueFromPipeline), parameter.Sets.Any(s => s.ValueFromPipelineByPropertyName));
        return new XElement(Maml.Command + "parameter",
            StructuralAttributes(parameter, required, position, merged.PipelineInput),
            new XElement(Maml.Doc + "name", parameter.Name),
            description,
            Value(parameter, required: !parameter.IsSwitch),
            ValueGroup(parameter),
            DevType(parameter));
    }

    private static object[] StructuralAttributes(ParameterShape parameter, bool required, int? position, string pipelineInput) =>
    [
        new XAttribute("required", required ? "true" : "false"),
        new XAttribute("variableLength", "true"),
        new XAttribute("globbing", parameter.SupportsWildcards ? "true" : "false"),
        new XAttribute("pipelineInput", pipelineInput),
        new XAttribute("position", position?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "named"),
        new XAttribute("aliases", parameter.Aliases.Count == 0 ? "none" : string.Join(", ", parameter.Aliases)),
    ];

    private static XElement Value(ParameterShape parameter, bool required = true) =>
        new(Maml.Command + "parameterValue",
            new XAttribute("required", required ? "true" : "false"),
            new XAttribute("variableLength", "false"),
            parameter.Type.Name);

    private static XElement? ValueGroup(ParameterShape parameter) =>
        parameter.AllowedValues.Count == 0
            ? null
            : new XElement(Maml.Command + "parameterValueGroup",
                parameter.AllowedValues.Select(v => new XElement(Maml.Command + "parameterValue",
                    new XAttribute("required", "false"),
                    new XAttribute("variableLength", "false"),
                    v)));

    private static XElement DevType(ParameterShape parameter) =>
        new(Maml.Dev + "type", new XElement(Maml.Doc + "name", parameter.Type.FullName));

    /// <summary>What the pipeline can carry into the cmdlet: the types of its by-value parameters.</summary>
    private static IEnumerable<XElement> InputTypes(IReadOnlyList<ParameterShape> parameters)
    {
        var byValue = parameters.Where(p => p.Sets.Any(s => s.ValueFromPipeline)).Select(p => p.Type.FullName).Distinct().ToList();
        return (byValue.Count == 0 ? ["None"] : byValue).Select(n => new XElement(Maml.Command + "inputType",
            new XElement(Maml.Dev + "type", new XElement(Maml.Doc + "name", n))));
    }
}
