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
        using var controller = ScriptHostProcess.Start("""
            param($module, $base, $kernel, $initrd, $kargs)
            Import-Module $module -ErrorAction Stop
            $vm = Start-FlightVm -ImagePath $base -Name orphaned -Kernel $kernel -Initrd $initrd -KernelArgs $kargs -MemoryMB 96 -ErrorAction Stop
            [Console]::Out.WriteLine("STARTED $($vm.Name) $([Environment]::ProcessId)")
            [Console]::Out.Flush()
            [Threading.Thread]::Sleep(-1)
            """, new Dictionary<string, string?> { ["VMTOOLS_HOME"] = s.Home },
            PowerShellHost.ModuleManifest, s.BaseImage, FlightVmGuest.Kernel, FlightVmGuest.Initrd, FlightVmGuest.KernelArgs);
        var stderr = controller.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var line = await ScriptHostProcess.ReadLineWithin(controller, TimeSpan.FromSeconds(120));
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
}
