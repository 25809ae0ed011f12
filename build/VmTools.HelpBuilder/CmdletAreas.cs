namespace VmTools.HelpBuilder;

/// <summary>
/// Groups cmdlets into the areas of the core (Images, CloudInit, Vms, Volumes) for related links.
/// A cmdlet's area is the core namespace of what it outputs; one that outputs nothing of the core
/// (Test-Qcow2Cache returns a bool, Remove-FlightVm nothing) joins the area of a cmdlet with its noun,
/// or else with the longest noun its own begins with (Get-FlightVmConsole writes strings: FlightVm).
/// </summary>
public static class CmdletAreas
{
    private const string CorePrefix = "VmTools.Core.";

    public static IReadOnlyDictionary<string, string?> Assign(IReadOnlyList<CmdletShape> cmdlets)
    {
        var areas = cmdlets.ToDictionary(c => c.Name, OutputArea);
        foreach (var cmdlet in cmdlets.Where(c => areas[c.Name] is null))
            areas[cmdlet.Name] = cmdlets.Where(c => cmdlet.Noun.StartsWith(c.Noun, StringComparison.Ordinal)).OrderByDescending(c => c.Noun.Length)
                .Select(c => areas[c.Name]).FirstOrDefault(a => a is not null);
        return areas;
    }

    /// <summary>
    /// The other cmdlets of a cmdlet's area, verb-noun sorted by noun then verb as the module lists them,
    /// then the module's cmdlets its examples call (a cmdlet alone in its area, such as
    /// ConvertTo-KubeVirtVirtualMachine, is still reached from what feeds it).
    /// </summary>
    public static IReadOnlyList<string> Related(CmdletShape cmdlet, IReadOnlyList<CmdletShape> cmdlets, IReadOnlyDictionary<string, string?> areas, string exampleText = "")
    {
        var sameArea = areas[cmdlet.Name] is not { } area
            ? []
            : cmdlets.Where(c => c.Name != cmdlet.Name && areas[c.Name] == area)
                .OrderBy(c => c.Noun, StringComparer.Ordinal).ThenBy(c => c.Verb, StringComparer.Ordinal)
                .Select(c => c.Name).ToList();
        var fromExamples = cmdlets.Where(c => c.Name != cmdlet.Name && !sameArea.Contains(c.Name)
                && System.Text.RegularExpressions.Regex.IsMatch(exampleText, $@"(?<![\w-]){System.Text.RegularExpressions.Regex.Escape(c.Name)}(?![\w-])"))
            .OrderBy(c => c.Noun, StringComparer.Ordinal).ThenBy(c => c.Verb, StringComparer.Ordinal)
            .Select(c => c.Name);
        return sameArea.Concat(fromExamples).ToList();
    }

    private static string? OutputArea(CmdletShape cmdlet) =>
        cmdlet.OutputTypeNames.Where(n => n.StartsWith(CorePrefix, StringComparison.Ordinal))
            .Select(n => n[CorePrefix.Length..].Split('.')[0])
            .FirstOrDefault();
}
