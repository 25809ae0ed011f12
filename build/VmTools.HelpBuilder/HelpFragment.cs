using System.Xml;
using System.Xml.Linq;

namespace VmTools.HelpBuilder;

/// <summary>
/// The hand-written part of one cmdlet's help (module/help/Verb-Noun.xml): synopsis, description,
/// one description per parameter, examples, and optional notes. Everything structural (syntax, types,
/// positions, pipeline input) is generated from the cmdlet, so a fragment states none of it.
/// </summary>
public sealed class HelpFragment
{
    private HelpFragment(string path, XElement command)
    {
        Path = path;
        Command = command;
    }

    public string Path { get; }

    private XElement Command { get; }

    public string? Name => Command.Element(Maml.Command + "details")?.Element(Maml.Command + "name")?.Value.Trim();

    public XElement? Details => Command.Element(Maml.Command + "details");

    public XElement? Description => Command.Element(Maml.Doc + "description");

    public XElement? Examples => Command.Element(Maml.Command + "examples");

    public XElement? Notes => Command.Element(Maml.Doc + "alertSet");

    /// <summary>Parameter name to its description element, in the fragment's order.</summary>
    public IReadOnlyList<(string Name, XElement? Description)> Parameters =>
        Command.Element(Maml.Command + "parameters")?.Elements(Maml.Command + "parameter")
            .Select(p => (p.Element(Maml.Doc + "name")?.Value.Trim() ?? "", p.Element(Maml.Doc + "description")))
            .ToList()
        ?? [];

    /// <summary>Structural attributes a fragment should not carry: they would compete with the generated ones.</summary>
    public IEnumerable<string> StructuralLeftovers =>
        Command.Descendants(Maml.Command + "parameter").SelectMany(p => p.Attributes()).Select(a => a.Name.LocalName)
            .Concat(Command.Descendants(Maml.Command + "parameterValue").Select(_ => "parameterValue"))
            .Concat(Command.Elements(Maml.Command + "syntax").Select(_ => "syntax"))
            .Concat(Command.Elements(Maml.Command + "relatedLinks").Select(_ => "relatedLinks"))
            .Distinct();

    /// <summary>Fragments carry no namespace declarations (they were once joined as text), so they are parsed inside a root that declares them.</summary>
    public static HelpFragment Load(string path)
    {
        var wrapped = $"<fragment xmlns:maml=\"{Maml.Doc}\" xmlns:command=\"{Maml.Command}\" xmlns:dev=\"{Maml.Dev}\">{File.ReadAllText(path)}</fragment>";
        XElement root;
        try
        {
            root = XElement.Parse(wrapped, LoadOptions.PreserveWhitespace);
        }
        catch (XmlException e)
        {
            throw new HelpBuildException(path, $"not well-formed MAML: {e.Message}");
        }
        var command = root.Element(Maml.Command + "command")
            ?? throw new HelpBuildException(path, "no <command:command> element");
        return new HelpFragment(path, command);
    }
}
