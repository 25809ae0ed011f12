using System.Diagnostics;
using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>
/// The proof the issue asks for: a VM started by another process survives that process's kill -9,
/// and a new session sees it alive, reconciles it as live and stops it.
/// </summary>
[Collection("qemu-vms")]
public sealed class SurvivesControllerTests
{
    [Fact]
    public async Task VmStartedByAnotherProcess_SurvivesKill9OfThatProcess_AndANewSessionSeesReconcilesAndStopsIt()
    {
        using var s = new VmSession();
        var host = ScriptHostPath();
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(host);
        psi.ArgumentList.Add("""
            param($module, $base, $kernel, $initrd, $kargs)
            Import-Module $module -ErrorAction Stop
            $vm = Start-FlightVm -ImagePath $base -Name orphaned -Kernel $kernel -Initrd $initrd -KernelArgs $kargs -MemoryMB 96 -ErrorAction Stop
            [Console]::Out.WriteLine("STARTED $($vm.Name) $([Environment]::ProcessId)")
            [Console]::Out.Flush()
            [Threading.Thread]::Sleep(-1)
            """);
        foreach (var a in new[] { PowerShellHost.ModuleManifest, s.BaseImage, FlightVmGuest.Kernel, FlightVmGuest.Initrd, FlightVmGuest.KernelArgs }) psi.ArgumentList.Add(a);
        psi.Environment["VMTOOLS_HOME"] = s.Home;
        using var controller = Process.Start(psi)!;
        var stderr = controller.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var line = await ReadLineWithin(controller, TimeSpan.FromSeconds(120));
        Assert.True(line is not null && line.StartsWith("STARTED orphaned", StringComparison.Ordinal), $"controller said '{line}', stderr: {(controller.HasExited ? await stderr : "(running)")}");

        // kill -9 the controller: no chance to clean up anything.
        Programs.MustRun("kill", "-9", controller.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await controller.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(137, controller.ExitCode);

        // This test process never saw the VM: it is a new session with an empty handle cache.
        var handles = s.Ps.Invoke("Get-VmHandles orphaned").Single();
        Assert.True((bool)handles.Properties["Alive"].Value, "the VM died with its controller");
        Assert.Contains("ScratchFile", handles.Properties["Source"].Value.ToString());
        var pid = (int)handles.Properties["Pid"].Value;
        Assert.Contains("-qmp unix:" + s.Home, File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '));
        s.Ps.Invoke("param($m) Wait-FlightVm orphaned -ReadyPattern $m -Timeout 120", FlightVmGuest.ReadyMarker);

        var actions = s.Ps.Invoke("Invoke-VmReconcile");
        var keep = actions.Single(a => (string)a.Properties["Name"].Value == "orphaned");
        Assert.Equal("Keep", keep.Properties["Action"].Value.ToString());
        Assert.True((bool)keep.Properties["Applied"].Value);
        Assert.True(Directory.Exists($"/proc/{pid}"));

        var stopped = s.Ps.Invoke("Get-FlightVm orphaned | Stop-FlightVm -Timeout 60 -PassThru").Single();
        Assert.Equal("Stopped", stopped.Properties["State"].Value.ToString());
        Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/cmdline").Contains(s.Home, StringComparison.Ordinal));
        Assert.False((bool)s.Ps.Invoke("Get-VmHandles orphaned").Single().Properties["Alive"].Value);
    }

    private static async Task<string?> ReadLineWithin(Process p, TimeSpan timeout)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            return await p.StandardOutput.ReadLineAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>The ScriptHost built beside this test assembly's configuration (a pwsh stand-in).</summary>
    private static string ScriptHostPath()
    {
        var testBin = AppContext.BaseDirectory.TrimEnd('/'); // .../tests/VmTools.Tests/bin/<Config>/<tfm>
        var tfm = Path.GetFileName(testBin);
        var config = Path.GetFileName(Path.GetDirectoryName(testBin)!);
        var repo = Path.GetDirectoryName(Path.GetDirectoryName(PowerShellHost.ModuleManifest)!)!;
        repo = Path.GetDirectoryName(repo)!;
        // Built through a ProjectReference; outside the solution it gets the default configuration, so take the newest build.
        var dll = Directory.EnumerateFiles(Path.Combine(repo, "tests", "VmTools.ScriptHost", "bin"), "VmTools.ScriptHost.dll", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == tfm)
            .OrderByDescending(f => (Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(f))) == config, File.GetLastWriteTimeUtc(f)))
            .FirstOrDefault();
        Assert.True(dll is not null, "VmTools.ScriptHost is not built: the test project builds it through a ProjectReference.");
        return dll;
    }
}
