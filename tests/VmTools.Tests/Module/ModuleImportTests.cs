using System.Management.Automation;
using VmTools.TestSupport;

namespace VmTools.Tests.Module;

public sealed class ModuleImportTests
{
    [Fact]
    public void Import_ExportsExactlyTheManifestCmdlets()
    {
        using var ps = new PowerShellHost();
        var exported = ps.Invoke("(Get-Module VmTools).ExportedCmdlets.Keys").Select(o => o.ToString()).OrderBy(x => x).ToArray();
        var manifest = ps.Invoke("([scriptblock]::Create([IO.File]::ReadAllText($args[0]))).InvokeReturnAsIs().CmdletsToExport", PowerShellHost.ModuleManifest)
            .Select(o => o.ToString()).OrderBy(x => x).ToArray();
        Assert.NotEmpty(exported);
        Assert.Equal(manifest, exported);
    }

    [Fact]
    public void EveryCmdlet_HasHelpSynopsisAndExample()
    {
        using var ps = new PowerShellHost();
        var names = ps.Invoke("(Get-Module VmTools).ExportedCmdlets.Keys").Select(o => o.ToString()!).ToArray();
        foreach (var name in names)
        {
            var synopsis = ps.Invoke("(Get-Help $args[0]).Synopsis", name).Single().ToString()!;
            Assert.False(string.IsNullOrWhiteSpace(synopsis) || synopsis.TrimStart().StartsWith(name, StringComparison.Ordinal) && synopsis.Contains('['), $"{name} has no help synopsis");
            var examples = ps.Invoke("@((Get-Help $args[0]).examples.example).Count", name).Single();
            Assert.True((int)examples.BaseObject > 0, $"{name} has no help example");
        }
    }

    [Fact]
    public void Statistics_OnEmptyState_AreZero()
    {
        using var home = new TempDirectory();
        using var ps = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = home.Path });
        var stats = ps.Invoke("Get-Qcow2CacheStatistics").Single();
        Assert.Equal(0L, stats.Properties["Hits"].Value);
        Assert.Equal(0L, stats.Properties["BytesDownloaded"].Value);
        Assert.True(File.Exists(Path.Combine(home.Path, "state", "vmtools.db")));
    }
}
