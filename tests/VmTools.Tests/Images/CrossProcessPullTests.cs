using System.Diagnostics;
using System.Globalization;
using VmTools.TestSupport;

namespace VmTools.Tests.Images;

/// <summary>
/// Several CI steps on one machine asking for the same base at once (lima #2722's failure): separate
/// PowerShell processes sharing one VMTOOLS_HOME. One downloads; the others wait on the per-digest lock
/// and take the finished file, downloading nothing.
/// </summary>
public sealed class CrossProcessPullTests : IClassFixture<PlainRegistryFixture>
{
    private const int Processes = 3;

    private const string PullScript = """
        param($module, $repo, $go)
        Import-Module $module -ErrorAction Stop
        [Console]::Out.WriteLine('READY'); [Console]::Out.Flush()
        while (-not [IO.File]::Exists($go)) { [Threading.Thread]::Sleep(2) }
        $start = [Diagnostics.Stopwatch]::GetTimestamp()
        $entry = Get-Qcow2Cache -Repository $repo -Tag t -ErrorAction Stop
        $end = [Diagnostics.Stopwatch]::GetTimestamp()
        [Console]::Out.WriteLine("PULL $($entry.Status) $($entry.BytesDownloaded) $start $end $($entry.Path)"); [Console]::Out.Flush()
        """;

    private readonly PlainRegistryFixture _registry;

    public CrossProcessPullTests(PlainRegistryFixture registry) => _registry = registry;

    [Fact]
    public async Task SimultaneousPullsFromSeparateProcesses_AreJoined_OneDownloadsTheRestHit()
    {
        using var publisher = new CacheSession();
        var disk = TestDisks.CreateQcow2(publisher.Work.Combine("shared.qcow2"), 192, seed: 192);
        var repo = $"{_registry.Server.Host}/cross/shared{Guid.NewGuid():N}"[..^20];
        publisher.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag t", disk, repo);

        using var home = new TempDirectory("vmtools-home");
        var go = Path.Combine(home.Path, "go");
        var env = new Dictionary<string, string?> { ["VMTOOLS_HOME"] = home.Path, ["REGISTRY_CACHE"] = null, ["QCOW2_CACHE_TAG"] = null };
        var hosts = Enumerable.Range(0, Processes).Select(_ => ScriptHostProcess.Start(PullScript, env, PowerShellHost.ModuleManifest, repo, go)).ToList();
        try
        {
            // Every process has the module loaded before any starts, so all pulls begin within milliseconds.
            foreach (var h in hosts)
            {
                var ready = await ScriptHostProcess.ReadLineWithin(h, TimeSpan.FromSeconds(120));
                Assert.True(ready == "READY", $"a puller said '{ready}': {(h.HasExited ? await h.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken) : "(running)")}");
            }

            await File.WriteAllTextAsync(go, "go", TestContext.Current.CancellationToken);
            var pulls = new List<(string Status, long Bytes, long Start, long End, string Path)>();
            foreach (var h in hosts)
            {
                var line = await ScriptHostProcess.ReadLineWithin(h, TimeSpan.FromSeconds(120));
                Assert.True(line?.StartsWith("PULL ", StringComparison.Ordinal) == true, $"a puller said '{line}': {(h.HasExited ? await h.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken) : "(running)")}");
                var f = line!.Split(' ', 6);
                pulls.Add((f[1], long.Parse(f[2], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture), long.Parse(f[4], CultureInfo.InvariantCulture), f[5]));
            }

            var downloader = Assert.Single(pulls, p => p.Status == "Pulled");
            Assert.InRange(downloader.Bytes, new FileInfo(disk).Length, new FileInfo(disk).Length + (1 << 20)); // the layer: the disk plus tar headers
            var joiners = pulls.Where(p => p.Status != "Pulled").ToList();
            Assert.All(joiners, j => Assert.Equal(("Hit", 0L), (j.Status, j.Bytes)));
            // CLOCK_MONOTONIC is one clock for all processes: a joiner that began before the download
            // ended really waited on it, so the test shows joining, not three pulls one after another.
            Assert.True(joiners.All(j => j.Start < downloader.End),
                $"the pulls did not overlap (download {downloader.Start}..{downloader.End}, others started at {string.Join(", ", joiners.Select(j => j.Start))}); this run proves nothing about joining");
            Assert.All(pulls, p => Assert.Equal(downloader.Path, p.Path));
            Assert.True(TestDisks.SameBytes(disk, downloader.Path));
            foreach (var h in hosts)
            {
                await h.WaitForExitAsync(TestContext.Current.CancellationToken);
                Assert.Equal(0, h.ExitCode);
            }
        }
        finally
        {
            foreach (var h in hosts)
            {
                if (!h.HasExited) h.Kill();
                h.Dispose();
            }
        }

        Assert.Single(Directory.GetDirectories(Path.Combine(home.Path, "cache", "images")));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(home.Path, "cache", "partial")));
    }
}
