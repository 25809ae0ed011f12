using System.Diagnostics;
using System.Security.Cryptography;
using VmTools.Core.Host;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Reconcile after crashes, against real qemu, taps, loops and processes.</summary>
[Collection("qemu-vms")]
public sealed class ReconcilerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KillQemu_ReconcileReleasesTap_KeepsRecordStopped_RemovesScratchFile_BaseUnchanged()
    {
        RealComponent.RequireRoot("tap devices");
        RealComponent.RequireProgram("ip", "apt-get install iproute2");
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        var baseHash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(baseImage)));
        var vm = await bed.StartOneAsync(bed.Request(baseImage, "victim") with { Network = VmNetworkMode.Tap, BridgeName = bed.NewBridge() });
        Assert.NotNull(vm.TapName);
        Assert.True(TapDevice.Exists(vm.TapName!));
        Assert.Equal(vm.BridgeName, Path.GetFileName(Path.GetFullPath(File.ResolveLinkTarget($"/sys/class/net/{vm.TapName}/master", false)!.FullName)));
        await bed.WaitReadyAsync(vm);
        Assert.Contains("DISK-WRITTEN", File.ReadAllText(vm.ConsoleLogPath));

        var pid = bed.Lifecycle.Handles("victim").Pid!.Value;
        Programs.MustRun("kill", "-9", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await WaitGone(pid);

        // A fresh process: no cache, its own connection.
        HandleStore.ForgetCache();
        using var db = bed.OpenAnotherConnection();
        var actions = await new Reconciler(db, bed.Paths).RunAsync(apply: true, removeOrphans: false, Ct);
        var a = Assert.Single(actions, x => x.Name == "victim");
        Assert.Equal(VmReconcileActionKind.TearDown, a.Action);
        Assert.Null(a.Error);
        Assert.Contains("tap " + vm.TapName, a.Detail);
        Assert.False(TapDevice.Exists(vm.TapName!));
        Assert.False(File.Exists(vm.HandlesPath));
        var record = new VmStore(db, bed.Paths).Get("victim");
        Assert.Equal(VmState.Stopped, record.State);

        // The guest's write went to the overlay, never to the base.
        Assert.Equal(baseHash, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(baseImage))));
        var overlayRaw = bed.Combine("overlay.raw");
        Programs.MustRun("qemu-img", "convert", "-O", "raw", vm.OverlayPath, overlayRaw);
        Assert.Contains(FlightVmGuest.DiskWriteMarker, System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(overlayRaw)));

        // A second reconcile finds nothing to do for it.
        Assert.DoesNotContain(await new Reconciler(db, bed.Paths).RunAsync(true, false, Ct), x => x.Name == "victim");
    }

    [Fact]
    public async Task CorruptHandlesFile_IsReportedForThatVm_WhileTheOthersAreReconciled()
    {
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        var live = await bed.StartOneAsync(bed.Request(baseImage, "live"));
        var dead = await bed.StartOneAsync(bed.Request(baseImage, "dead"));
        var corrupt = await bed.StartOneAsync(bed.Request(baseImage, "corrupt"));
        var deadPid = bed.Lifecycle.Handles("dead").Pid!.Value;
        var corruptPid = bed.Lifecycle.Handles("corrupt").Pid!.Value;
        Programs.MustRun("kill", "-9", deadPid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await WaitGone(deadPid);
        File.WriteAllText(corrupt.HandlesPath, "{ \"pid\": 12, this is not json");

        HandleStore.ForgetCache();
        using var db = bed.OpenAnotherConnection();
        var actions = await new Reconciler(db, bed.Paths).RunAsync(apply: true, removeOrphans: false, Ct);
        var store = new VmStore(db, bed.Paths);

        var c = Assert.Single(actions, x => x.Name == "corrupt");
        Assert.Equal(VmReconcileActionKind.ReportCorruptHandles, c.Action);
        Assert.Equal("VmHandlesCorrupt", c.ErrorId);
        Assert.Contains(corrupt.HandlesPath, c.Error);
        Assert.Equal(VmState.Running, store.Get("corrupt").State);
        Assert.NotNull(ProcessTable.Read("/proc", corruptPid)); // never acted on unreadable handles

        Assert.Equal(VmReconcileActionKind.Keep, Assert.Single(actions, x => x.Name == "live").Action);
        Assert.Equal(VmState.Running, store.Get("live").State);
        Assert.Equal(VmReconcileActionKind.TearDown, Assert.Single(actions, x => x.Name == "dead").Action);
        Assert.Equal(VmState.Stopped, store.Get("dead").State);
        Assert.False(File.Exists(dead.HandlesPath));

        // Stop -Force rediscovers the corrupt VM's qemu from /proc and stops it.
        var lifecycle = new VmLifecycle(db, bed.Paths);
        var normal = await Assert.ThrowsAsync<VmToolsException>(() => lifecycle.StopAsync("corrupt", TimeSpan.FromSeconds(1), force: false, null, Ct));
        Assert.Equal("VmHandlesCorrupt", normal.ErrorId);
        Assert.Equal(VmState.Stopped, (await lifecycle.StopAsync("corrupt", TimeSpan.Zero, force: true, null, Ct)).State);
        Assert.Null(ProcessTable.Read("/proc", corruptPid));
        _ = live;
    }

    [Fact]
    public async Task RecycledPid_IsNeverSignalled_AndTheRecordIsTornDown()
    {
        using var bed = new VmTestBed();
        var store = new VmStore(bed.Db, bed.Paths);
        var vm = Record(bed, "ghost");
        store.Insert(null, vm);
        using var bystander = Process.Start(new ProcessStartInfo("sleep", "300") { UseShellExecute = false })!;
        try
        {
            var entry = ProcessTable.Read("/proc", bystander.Id)!;
            // Same PID, wrong start time: a recycled PID.
            HandleStore.Set(vm, new VmHandles { Pid = bystander.Id, ProcessStartTime = entry.StartTime + 1, BootId = BootId.Current, QmpSocket = vm.QmpSocketPath });
            HandleStore.ForgetCache();
            var a = Assert.Single(await new Reconciler(bed.Db, bed.Paths).RunAsync(true, false, Ct));
            Assert.Equal(VmReconcileActionKind.TearDown, a.Action);
            Assert.False(bystander.HasExited);

            // Right PID and start time, but its cmdline does not name the VM's QMP socket: still not ours.
            store.SetState(vm, VmState.Running, null);
            HandleStore.Set(vm, new VmHandles { Pid = bystander.Id, ProcessStartTime = entry.StartTime, BootId = BootId.Current, QmpSocket = vm.QmpSocketPath });
            Assert.False(bed.Lifecycle.Handles("ghost").Alive);
            await bed.Lifecycle.StopAsync("ghost", TimeSpan.Zero, force: true, null, Ct);
            Assert.False(bystander.HasExited);

            // Another boot's handles describe nothing alive now.
            store.SetState(vm, VmState.Running, null);
            HandleStore.Set(vm, new VmHandles { Pid = bystander.Id, ProcessStartTime = entry.StartTime, BootId = Guid.NewGuid().ToString(), QmpSocket = vm.QmpSocketPath });
            Assert.Equal(VmReconcileActionKind.TearDown, Assert.Single(await new Reconciler(bed.Db, bed.Paths).RunAsync(true, false, Ct)).Action);
            Assert.False(bystander.HasExited);
            Assert.Equal(VmState.Stopped, store.Get("ghost").State);
        }
        finally
        {
            bystander.Kill();
        }
    }

    [Fact]
    public async Task DeadVmWithRealLoops_ReconcileDetachesThem_AndOrphanLoopsAreReportedThenRemoved()
    {
        RealComponent.RequireRoot("loop devices");
        RealComponent.RequireProgram("losetup", "apt-get install mount");
        using var bed = new VmTestBed();
        var store = new VmStore(bed.Db, bed.Paths);
        var vm = Record(bed, "looped") with { DiskMode = VmDiskMode.DmSnapshot };
        Directory.CreateDirectory(vm.Directory);
        var baseRaw = bed.Combine("base.raw");
        using (var f = File.Create(baseRaw)) f.SetLength(1 << 20);
        using (var f = File.Create(vm.OverlayPath)) f.SetLength(1 << 20);
        store.Insert(null, vm with { ImagePath = baseRaw });
        var baseLoop = bed.AttachLoop(baseRaw, readOnly: true);
        var cowLoop = bed.AttachLoop(vm.OverlayPath);
        // dm is absent on this kernel: the handles name only the loops, as after a crash before dmsetup.
        HandleStore.Set(vm, new VmHandles { Pid = 999_999, ProcessStartTime = 1, BootId = BootId.Current, BaseLoop = baseLoop, CowLoop = cowLoop });
        var orphanFile = Path.Combine(bed.Paths.VmDirectory, "stray.img");
        using (var f = File.Create(orphanFile)) f.SetLength(1 << 20);
        var orphan = bed.AttachLoop(orphanFile);

        HandleStore.ForgetCache();
        var plan = await new Reconciler(bed.Db, bed.Paths).RunAsync(apply: false, removeOrphans: true, Ct);
        Assert.Contains(plan, x => x.Name == "looped" && x.Action == VmReconcileActionKind.TearDown && !x.Applied && x.Detail!.Contains(cowLoop));
        Assert.Contains(plan, x => x.Name == orphan && x.Action == VmReconcileActionKind.RemoveOrphanLoop && !x.Applied);
        Assert.DoesNotContain(plan, x => x.Name == cowLoop || x.Name == baseLoop);
        Assert.Contains(LoopDevices.List(), l => l.Device == cowLoop); // -WhatIf changed nothing
        Assert.Equal(VmState.Running, store.Get("looped").State);

        var done = await new Reconciler(bed.Db, bed.Paths).RunAsync(apply: true, removeOrphans: true, Ct);
        Assert.Contains(done, x => x.Name == "looped" && x.Action == VmReconcileActionKind.TearDown && x.Applied && x.Error is null);
        Assert.Contains(done, x => x.Name == orphan && x.Applied);
        var attached = LoopDevices.List().Select(l => l.Device).ToHashSet();
        Assert.DoesNotContain(cowLoop, attached);
        Assert.DoesNotContain(baseLoop, attached);
        Assert.DoesNotContain(orphan, attached);
        Assert.Equal(VmState.Stopped, store.Get("looped").State);
        Assert.False(File.Exists(vm.HandlesPath));
    }

    [Fact]
    public async Task OrphanTap_WithThisStateDirectorysPrefix_IsReported_AndRemovedOnlyWithRemoveOrphans()
    {
        RealComponent.RequireRoot("tap devices");
        using var bed = new VmTestBed();
        var orphan = VmNaming.TapPrefix(bed.Paths) + "77";
        Programs.MustRun("ip", "tuntap", "add", "dev", orphan, "mode", "tap");
        var foreign = "vmtzzzz-77"; // another state directory's prefix: never touched
        Programs.MustRun("ip", "tuntap", "add", "dev", foreign, "mode", "tap");
        try
        {
            var report = await new Reconciler(bed.Db, bed.Paths).RunAsync(apply: true, removeOrphans: false, Ct);
            var a = Assert.Single(report);
            Assert.Equal((orphan, VmReconcileActionKind.RemoveOrphanTap, false), (a.Name, a.Action, a.Applied));
            Assert.True(TapDevice.Exists(orphan));
            await new Reconciler(bed.Db, bed.Paths).RunAsync(apply: true, removeOrphans: true, Ct);
            Assert.False(TapDevice.Exists(orphan));
            Assert.True(TapDevice.Exists(foreign));
        }
        finally
        {
            Programs.Run("ip", "link", "del", foreign);
        }
    }

    internal static FlightVm Record(VmTestBed bed, string name)
    {
        var id = VmNaming.NewId();
        var dir = Path.Combine(bed.Paths.VmDirectory, id);
        return new FlightVm
        {
            Name = name, Id = id, State = VmState.Running, ImagePath = "/nonexistent/base.qcow2", DiskMode = VmDiskMode.Overlay,
            OverlayPath = Path.Combine(dir, "cow.img"), Directory = dir, ConsoleLogPath = Path.Combine(dir, "console.log"),
            QmpSocketPath = Path.Combine(dir, "qmp.sock"), Network = VmNetworkMode.None, MacAddress = MacAddresses.New(),
            MemoryMB = 64, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    private static async Task WaitGone(int pid)
    {
        for (var i = 0; i < 100 && ProcessTable.Read("/proc", pid) is not null; i++) await Task.Delay(50, Ct);
        Assert.Null(ProcessTable.Read("/proc", pid));
    }
}
