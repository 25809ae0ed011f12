using System.Text.Json;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Start, wait, stop and remove real qemu VMs (TCG) booting the busybox test guest.</summary>
[Collection("qemu-vms")]
public sealed class FlightVmLifecycleTests
{
    [Fact]
    public async Task Start_BootsGuest_RecordsRunning_WritesHandlesFile_AndStopPowersItDownGracefully()
    {
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        var vm = await bed.StartOneAsync(bed.Request(baseImage, "alpha"));
        Assert.Equal(VmState.Running, vm.State);
        Assert.True(File.Exists(vm.OverlayPath));
        Assert.NotNull(vm.SshPort);

        var onDisk = JsonSerializer.Deserialize<VmHandles>(File.ReadAllText(vm.HandlesPath))!;
        Assert.True(onDisk.Pid > 0);
        Assert.Equal(BootId.Current, onDisk.BootId);
        var process = ProcessTable.Read("/proc", onDisk.Pid)!;
        Assert.Equal(onDisk.ProcessStartTime, process.StartTime);
        Assert.Contains(vm.QmpSocketPath, process.CommandLine);

        await bed.WaitReadyAsync(vm);
        Assert.Contains("DISK-WRITTEN", File.ReadAllText(vm.ConsoleLogPath));
        var report = bed.Lifecycle.Handles("alpha");
        Assert.True(report.Alive);
        Assert.Equal(onDisk.Pid, report.Pid);

        var stopped = await bed.Lifecycle.StopAsync("alpha", TimeSpan.FromSeconds(60), force: false, null, TestContext.Current.CancellationToken);
        Assert.Equal(VmState.Stopped, stopped.State);
        var console = File.ReadAllText(vm.ConsoleLogPath);
        // it went down through ACPI, not SIGKILL; on failure the console's end shows what the guest last did
        Assert.True(console.Contains("POWER-BUTTON", StringComparison.Ordinal), "no POWER-BUTTON on the console, which ends: " + console[Math.Max(0, console.Length - 1500)..]);
        Assert.Null(ProcessTable.Read("/proc", onDisk.Pid) is { } p && p.StartTime == onDisk.ProcessStartTime ? p : null);
        Assert.False(File.Exists(vm.HandlesPath));
        Assert.Equal(VmState.Stopped, bed.Lifecycle.Store.Get("alpha").State);
    }

    [Fact]
    public async Task Stop_GuestIgnoringPowerdown_IsKilledAfterTheTimeout()
    {
        using var bed = new VmTestBed();
        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "deaf", FlightVmGuest.DeafInitrd));
        await bed.WaitReadyAsync(vm);
        var pid = bed.Lifecycle.Handles("deaf").Pid!.Value;
        var started = DateTime.UtcNow;
        var stopped = await bed.Lifecycle.StopAsync("deaf", TimeSpan.FromSeconds(2), force: false, null, TestContext.Current.CancellationToken);
        Assert.Equal(VmState.Stopped, stopped.State);
        // The timeout runs on the runtime's millisecond tick, the wall clock here on another: allow the difference.
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(2) - TimeSpan.FromMilliseconds(50), $"stop returned before the powerdown timeout ({DateTime.UtcNow - started})");
        Assert.Null(ProcessTable.Read("/proc", pid));
        Assert.DoesNotContain("POWER-BUTTON", File.ReadAllText(vm.ConsoleLogPath));
    }

    [Fact]
    public async Task Remove_RunningVm_RefusesWithoutForce_AndWithForceDeletesDirectoryAndRecord()
    {
        using var bed = new VmTestBed();
        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "gone"));
        var e = await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.RemoveAsync("gone", force: false, TestContext.Current.CancellationToken));
        Assert.Equal("VmRunning", e.ErrorId);
        Assert.True(bed.Lifecycle.Handles("gone").Alive);

        var pid = bed.Lifecycle.Handles("gone").Pid!.Value;
        await bed.Lifecycle.RemoveAsync("gone", force: true, TestContext.Current.CancellationToken);
        Assert.Null(bed.Lifecycle.Store.Find("gone"));
        Assert.False(Directory.Exists(vm.Directory));
        Assert.Null(ProcessTable.Read("/proc", pid));
    }

    [Fact]
    public async Task Wait_WhenQemuExits_FailsFastWithConsoleTail()
    {
        using var bed = new VmTestBed();
        // busybox as init, run as "poweroff -f": the guest powers off at once and qemu exits.
        await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "quitter") with { KernelArgs = "console=ttyS0 rdinit=/sbin/poweroff -- -f" });
        var started = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.WaitAsync("quitter", "never-printed", TimeSpan.FromSeconds(120), TestContext.Current.CancellationToken));
        Assert.Equal("VmExitedBeforeReady", e.ErrorId);
        Assert.Contains("Console:", e.Message);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(60), "Wait did not notice that qemu exited");
    }

    [Fact]
    public async Task Wait_WhenTheMarkerNeverAppears_TimesOut()
    {
        using var bed = new VmTestBed();
        await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "slow"));
        var e = await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.WaitAsync("slow", "never-printed", TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken));
        Assert.Equal("VmReadyTimeout", e.ErrorId);
        var bad = await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.WaitAsync("slow", "([", TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken));
        Assert.Equal("VmReadyPatternInvalid", bad.ErrorId);
    }

    [Fact]
    public async Task Wait_OnAGuestThatNeverWritesTheConsole_WarnsNamingTheAccelerator_AndTheTimeoutSaysTheConsoleWasEmpty()
    {
        using var bed = new VmTestBed();
        // No console= argument: the kernel and /init write to tty0, which -nodefaults leaves without a display, so
        // the serial log stays empty while qemu runs: what a guest under an accelerator that cannot run it looks like.
        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "mute") with { KernelArgs = "panic=-1 quiet " + QemuCommandLine.SlowHostKernelArgs });
        var expected = TestGuest.Accelerator;
        Assert.Equal(expected, vm.Accelerator);
        Assert.Equal(expected, bed.Lifecycle.Store.Get("mute").Accelerator);

        var warnings = new List<string>();
        var e = await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.WaitAsync("mute", "never-printed", TimeSpan.FromSeconds(6), TestContext.Current.CancellationToken, TimeSpan.FromSeconds(2), warnings.Add));
        Assert.Equal("VmReadyTimeout", e.ErrorId);
        Assert.Contains("The console stayed empty", e.Message);
        Assert.Contains(expected == VmAccelerator.Kvm ? "with KVM" : "with TCG", e.Message);
        var warning = Assert.Single(warnings);
        Assert.Contains("still empty after 2 s", warning);
        Assert.Contains(expected == VmAccelerator.Kvm ? "-Accelerator Tcg" : "TCG", warning);
        Assert.True(bed.Lifecycle.Handles("mute").Alive, "the silent guest's qemu should still run: the warning is for a live VM");
        Assert.Equal(0, new FileInfo(vm.ConsoleLogPath).Length);
    }

    [Fact]
    public async Task Start_AskingForKvmWhereItCannotRun_FailsBeforeAllocating_AndWritesNothing()
    {
        using var bed = new VmTestBed();
        // A host whose /dev/kvm is PVM's, as on the machines this project runs on.
        using var fake = new TempDirectory("vmtools-pvm-host");
        Directory.CreateDirectory(fake.Combine("dev"));
        File.WriteAllBytes(fake.Combine("dev", "kvm"), Array.Empty<byte>());
        Directory.CreateDirectory(fake.Combine("sys", "module", "kvm_pvm"));
        var lifecycle = new VmLifecycle(bed.Db, bed.Paths, accelerators: new AcceleratorProbe(fake.Path));
        var verbose = new List<string>();

        var e = await Assert.ThrowsAsync<VmToolsException>(() => lifecycle.StartAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "kvm-only") with { Accelerator = VmAccelerator.Kvm }, verbose.Add, TestContext.Current.CancellationToken));
        Assert.Equal("VmAcceleratorUnavailable", e.ErrorId);
        Assert.Contains("kvm_pvm", e.Message);
        Assert.Empty(lifecycle.Store.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(bed.Paths.VmDirectory));

        // Auto on that host runs under TCG, says why, and records it.
        var results = await lifecycle.StartAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "auto"), verbose.Add, TestContext.Current.CancellationToken);
        var vm = Assert.Single(results).Vm;
        Assert.Equal(VmAccelerator.Tcg, vm.Accelerator);
        Assert.Contains("KVM: /dev/kvm is provided by kvm_pvm, which cannot run stock kernels; using TCG", verbose);
        Assert.Contains("-accel tcg -cpu max", ProcessTable.Read("/proc", lifecycle.Handles("auto").Pid!.Value)!.CommandLine);
    }

    [Fact]
    public async Task Start_WithBadInput_FailsWithSpecificErrorId_AndLeavesNoRecordOrDirectory()
    {
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        async Task<string> Fails(VmStartRequest r) => (await Assert.ThrowsAsync<VmToolsException>(() => bed.Lifecycle.StartAsync(r, null, TestContext.Current.CancellationToken))).ErrorId;

        Assert.Equal("VmImageNotFound", await Fails(bed.Request(bed.Combine("missing.qcow2"))));
        Assert.Equal("VmKernelNotFound", await Fails(bed.Request(baseImage) with { KernelPath = bed.Combine("nokernel") }));
        Assert.Equal("VmMemoryInvalid", await Fails(bed.Request(baseImage) with { MemoryMB = 1 }));
        Assert.Equal("VmCountInvalid", await Fails(bed.Request(baseImage) with { Count = 0 }));
        Assert.Equal("VmNameInvalid", await Fails(bed.Request(baseImage, "bad name!")));
        Assert.Equal("VmDmSnapshotNeedsRaw", await Fails(bed.Request(baseImage) with { DiskMode = VmDiskMode.DmSnapshot }));
        Assert.Equal("VmKernelRequired", await Fails(bed.Request(baseImage) with { KernelPath = null }));
        Assert.Empty(bed.Lifecycle.Store.List());
        Assert.Empty(Directory.EnumerateDirectories(bed.Paths.VmDirectory));

        await bed.StartOneAsync(bed.Request(baseImage, "taken"));
        Assert.Equal("VmNameInUse", await Fails(bed.Request(baseImage, "taken")));
        Assert.Single(bed.Lifecycle.Store.List());
    }

    [Fact]
    public async Task Start_WhenQemuRejectsTheConfiguration_MarksBroken_WithLastError_AndReleasesTheOverlay()
    {
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        // A directory is not a kernel image qemu can load.
        var notAKernel = bed.Combine("kernel-file");
        File.WriteAllText(notAKernel, "not a kernel");
        var results = await bed.Lifecycle.StartAsync(bed.Request(baseImage, "broken") with { KernelPath = notAKernel }, null, TestContext.Current.CancellationToken);
        var r = Assert.Single(results);
        Assert.NotNull(r.Error);
        Assert.Equal("VmStartFailed", r.Error!.ErrorId);
        var record = bed.Lifecycle.Store.Get("broken");
        Assert.Equal(VmState.Broken, record.State);
        Assert.Contains("qemu", record.LastError);
        Assert.False(File.Exists(record.HandlesPath));
    }
}
