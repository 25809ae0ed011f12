using System.Text.RegularExpressions;

namespace VmTools.Tests.Module;

/// <summary>
/// The help a user reads agrees with the module: cmdlet help (compiled from the cmdlets at build
/// time) documents exactly the parameters Get-Command shows, and about_VmTools names every ErrorId
/// and environment variable the code uses, and no ErrorId it does not.
/// tests/Pester/Help.Tests.ps1 checks the same cmdlet help as rendered in a real pwsh.
/// </summary>
public sealed partial class HelpContractTests
{
    private static string AboutTopicPath => Path.Combine(PowerShellHost.RepositoryRoot, "out", "VmTools", "en-US", "about_VmTools.help.txt");

    [Fact]
    public void EveryCmdlet_HelpDocumentsExactlyItsParameters_AndOneSyntaxPerParameterSet()
    {
        using var ps = new PowerShellHost();
        var mismatches = ps.Invoke("""
            $common = [System.Management.Automation.PSCmdlet]::CommonParameters
            foreach ($command in Get-Command -Module VmTools -CommandType Cmdlet) {
                $help = Get-Help $command.Name -Full
                $own = @($command.Parameters.Keys | Where-Object { $_ -notin $common } | Sort-Object) -join ','
                $documented = @($help.parameters.parameter.name | Sort-Object) -join ','
                if ($own -ne $documented) { "$($command.Name): parameters [$documented], cmdlet has [$own]" }
                $sets = @($command.ParameterSets).Count
                $items = @($help.syntax.syntaxItem).Count
                if ($sets -ne $items) { "$($command.Name): $items syntax items for $sets parameter sets" }
                if (-not @($help.relatedLinks.navigationLink).Count) { "$($command.Name): no related links" }
            }
            """).Select(o => o.ToString()).ToList();
        Assert.Empty(mismatches);
    }

    [Fact]
    public void AboutTopic_ListsEveryErrorIdTheCodeRaises()
    {
        var about = File.ReadAllText(AboutTopicPath);
        var missing = RaisedErrorIds().Where(id => !Regex.IsMatch(about, $@"\b{id}\b")).Order().ToList();
        Assert.Empty(missing);
    }

    [Fact]
    public void AboutTopic_ListsNoErrorIdTheCodeLacks()
    {
        var about = File.ReadAllText(AboutTopicPath);
        var errors = about[about.IndexOf("  ERRORS", StringComparison.Ordinal)..about.IndexOf("EXAMPLES", StringComparison.Ordinal)];
        // The ids are the PascalCase words indented under an area heading.
        var listed = errors.Split('\n').Where(l => l.StartsWith("        ", StringComparison.Ordinal))
            .SelectMany(l => l.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .Where(w => PascalCaseId().IsMatch(w))
            .ToList();
        Assert.True(listed.Count > 100, $"found only {listed.Count} ErrorIds under ERRORS; has the section's layout changed?");

        var code = SourceText();
        var templates = InterpolatedId().Matches(code).Select(m => new Regex("^" + Regex.Replace(m.Groups[1].Value, @"\{[^}]*\}", @"\w+") + "$")).ToList();
        var unknown = listed.Where(id => !code.Contains($"\"{id}\"", StringComparison.Ordinal) && !templates.Any(t => t.IsMatch(id))).ToList();
        Assert.Empty(unknown);
    }

    [Fact]
    public void AboutTopic_NamesEveryEnvironmentVariableTheCodeReads()
    {
        var about = File.ReadAllText(AboutTopicPath);
        var read = EnvironmentRead().Matches(SourceText()).Select(m => m.Groups["name"].Value)
            .Where(v => v != "HOME") // the user's home, only a fallback for the XDG folders
            .Distinct().ToList();
        Assert.Contains("VMTOOLS_HOME", read);
        var undocumented = read.Where(v => !Regex.IsMatch(about, $@"\b{v}\b")).ToList();
        Assert.Empty(undocumented);
    }

    /// <summary>
    /// ErrorIds as the code hands them over: to a VmToolsException or an ErrorRecord, to the helpers
    /// that make one (EnsureSuccess, Require, Missing, Bad, ThrowArgumentError), or as an *ErrorId constant.
    /// </summary>
    private static HashSet<string> RaisedErrorIds()
    {
        var code = SourceText();
        return RaisedId().Matches(code).Select(m => m.Groups.Values.Skip(1).First(g => g.Success).Value).ToHashSet();
    }

    private static string SourceText() => string.Join('\n',
        Directory.EnumerateFiles(Path.Combine(PowerShellHost.RepositoryRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText));

    [GeneratedRegex(@"""(\w+)""\s*,\s*(?:Core\.)?FailureKind\.|""(\w+)""\s*,\s*ErrorCategory\.|\b(?:EnsureSuccess|Missing|Bad|ThrowArgumentError)\(\s*""(\w+)""|\bEnsureSuccess\([^;()]*,\s*""(\w+)""\s*\)|\bRequire\([^,;]+,\s*""(\w+)""|ErrorId\s*=\s*""(\w+)""|ErrorId\s*\?\?\s*""(\w+)""")]
    private static partial Regex RaisedId();

    [GeneratedRegex(@"\$""((?:[A-Z][a-z0-9]+)+\{[^}""]+\}[A-Za-z0-9]+)""")]
    private static partial Regex InterpolatedId();

    [GeneratedRegex(@"^[A-Z][a-z0-9]+(?:[A-Z0-9][a-z0-9]*)+$")]
    private static partial Regex PascalCaseId();

    [GeneratedRegex(@"(?:GetEnvironmentVariable|getEnv|environment)\(\s*""(?<name>[A-Z][A-Z0-9_]*)""|EnvironmentVariable\s*=\s*""(?<name>[A-Z][A-Z0-9_]*)""")]
    private static partial Regex EnvironmentRead();
}
