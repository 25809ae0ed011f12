using System.Xml.Linq;

namespace VmTools.HelpBuilder;

/// <summary>
/// Joins the compiled cmdlets with their hand-written fragments into one MAML document, and refuses
/// help that would mislead: a cmdlet without help, a parameter without a description, a described
/// parameter the cmdlet lacks, help without an example. Every defect is reported, not just the first.
/// </summary>
public static class HelpCompiler
{
    public static (XDocument? Help, IReadOnlyList<HelpBuildException> Defects) Compile(
        IReadOnlyList<CmdletShape> cmdlets, IReadOnlyList<HelpFragment> fragments)
    {
        var defects = new List<HelpBuildException>();
        var byName = new Dictionary<string, HelpFragment>(StringComparer.OrdinalIgnoreCase);
        foreach (var fragment in fragments)
        {
            var expected = Path.GetFileNameWithoutExtension(fragment.Path);
            if (!string.Equals(fragment.Name, expected, StringComparison.Ordinal))
                defects.Add(new(fragment.Path, $"names the cmdlet '{fragment.Name}'; the file name says '{expected}'"));
            else if (!cmdlets.Any(c => c.Name == expected))
                defects.Add(new(fragment.Path, $"no cmdlet named {expected} is compiled into the module"));
            else
                byName[expected] = fragment;
        }

        var areas = CmdletAreas.Assign(cmdlets);
        var commands = new List<XElement>();
        foreach (var cmdlet in cmdlets)
        {
            if (!byName.TryGetValue(cmdlet.Name, out var fragment))
            {
                defects.Add(new(cmdlet.Name, $"has no help fragment: write module/help/{cmdlet.Name}.xml"));
                continue;
            }
            var found = Check(cmdlet, fragment).ToList();
            defects.AddRange(found);
            if (found.Count == 0)
                commands.Add(MamlWriter.Command(cmdlet, fragment, CmdletAreas.Related(cmdlet, cmdlets, areas, fragment.Examples?.Value ?? string.Empty)));
        }

        if (defects.Count > 0)
            return (null, defects);
        var help = new XDocument(
            new XDeclaration("1.0", "utf-8", null),
            new XElement(Maml.Msh + "helpItems", new XAttribute("schema", "maml"), Maml.Declarations, commands));
        return (help, defects);
    }

    private static IEnumerable<HelpBuildException> Check(CmdletShape cmdlet, HelpFragment fragment)
    {
        HelpBuildException Defect(string message) => new(fragment.Path, message);

        if (Maml.IsBlank(fragment.Details?.Element(Maml.Doc + "description")))
            yield return Defect("has no synopsis (command:details/maml:description)");
        if (Maml.IsBlank(fragment.Description))
            yield return Defect("has no description (command:command/maml:description)");
        if (fragment.Examples?.Elements(Maml.Command + "example").Any(e => !string.IsNullOrWhiteSpace(e.Element(Maml.Dev + "code")?.Value)) != true)
            yield return Defect("has no example with code");
        foreach (var leftover in fragment.StructuralLeftovers)
            yield return Defect($"states '{leftover}', which is generated from the cmdlet: remove it from the fragment");

        var actual = MamlWriter.Parameters(cmdlet).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var described = fragment.Parameters.Where(p => !Maml.IsBlank(p.Description)).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, _) in fragment.Parameters.Where(p => !actual.Contains(p.Name)))
            yield return Defect($"describes -{name}, which {cmdlet.Name} does not have");
        foreach (var duplicate in fragment.Parameters.GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
            yield return Defect($"describes -{duplicate.Key} more than once");
        foreach (var parameter in cmdlet.Parameters.Where(p => !described.Contains(p.Name)))
            yield return Defect($"has no description of -{parameter.Name} ({parameter.Type.Name})");
    }
}
