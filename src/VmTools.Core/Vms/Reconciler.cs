using VmTools.Core.Host;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// Brings the records in line with the OS after any crash. One /proc scan serves every VM. Live VMs
/// are kept, their handles re-seeded and their Running/Paused state set to what qemu says over QMP;
/// dead ones are torn down (every error folded) and marked stopped, or broken with LastError. A record is never deleted. A corrupt scratch file is reported
/// for its VM while the others proceed. Orphaned taps and loops are reported and, when asked, removed.
/// Then the DHCP server of each VmTools bridge no VM runs on is stopped, and the bridge deleted once it has no ports.
/// </summary>
public sealed class Reconciler
{
    /// <summary>How long reconcile waits for one live VM's QMP socket to say its status; short, since a hung socket only costs a warning.</summary>
    public static readonly TimeSpan QmpStatusTimeout = TimeSpan.FromSeconds(2);

    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;
    private readonly ICommandRunner _runner;

    public Reconciler(StateDb db, VmToolsPaths paths, ICommandRunner? runner = null)
    {
        _db = db;
        _paths = paths;
        _runner = runner ?? ProcessRunner.Instance;
    }

    /// <summary>Plans (apply=false) or performs the reconcile.</summary>
    public async Task<IReadOnlyList<VmReconcileAction>> RunAsync(bool apply, bool removeOrphans, CancellationToken ct)
    {
        var store = new VmStore(_db, _paths);
        var vms = store.List();
        var processes = ProcessTable.Scan();
        var bootId = BootId.Current;
        var actions = new List<VmReconcileAction>();
        var ownedTaps = new HashSet<string>(StringComparer.Ordinal);
        var ownedLoops = new HashSet<string>(StringComparer.Ordinal);

        foreach (var vm in vms)
        {
            ct.ThrowIfCancellationRequested();
            // With no scratch file and a stopped record there is nothing to look at: the common case stays cheap.
            if (vm.State is VmState.Stopped or VmState.Broken && HandleStore.Cached(vm) is null && !File.Exists(vm.HandlesPath)
                && processes.FindByQmpSocket(vm.QmpSocketPath) is null)
            {
                continue;
            }

            using var held = apply ? VmLock.TryAcquire(_paths, vm.Id) : null;
            if (apply && held is null)
            {
                actions.Add(new VmReconcileAction { Name = vm.Name, Action = VmReconcileActionKind.SkipBusy, StateBefore = vm.State, StateAfter = vm.State, Applied = false, Detail = "another operation holds this VM's lock" });
                if (vm.TapName is { } busyTap) ownedTaps.Add(busyTap);
                continue;
            }

            var d = HandleDiscovery.Discover(vm, processes, bootId);
            if (d.Error is not null)
            {
                actions.Add(new VmReconcileAction
                {
                    Name = vm.Name, Action = VmReconcileActionKind.ReportCorruptHandles, StateBefore = vm.State, StateAfter = vm.State, Applied = false,
                    Error = d.Error.Message, ErrorId = d.Error.ErrorId, Detail = d.Alive ? $"qemu pid {d.Process!.Pid} is alive" : "no live qemu found",
                });
                // Whatever it holds stays its own: orphan removal must not take it either.
                if (vm.TapName is { } t) ownedTaps.Add(t);
                if (d.Handles is { } dh) Own(dh, ownedTaps, ownedLoops);
                continue;
            }

            if (d.Alive)
            {
                Own(d.Handles!, ownedTaps, ownedLoops);
                var (after, said, warning) = await AskQemuAsync(vm, ct).ConfigureAwait(false);
                if (apply)
                {
                    HandleStore.Set(vm, d.Handles!);
                    if (vm.State != after) store.SetState(vm, after, null);
                }

                actions.Add(new VmReconcileAction { Name = vm.Name, Action = VmReconcileActionKind.Keep, StateBefore = vm.State, StateAfter = after, Applied = apply, Detail = $"qemu pid {d.Process!.Pid} alive ({d.Source}), {said}", Warning = warning });
                continue;
            }

            var releases = Describe(d.Handles);
            if (!apply)
            {
                // The teardown will release these; they are not orphans.
                if (d.Handles is { } planned) Own(planned, ownedTaps, ownedLoops);
                actions.Add(new VmReconcileAction { Name = vm.Name, Action = VmReconcileActionKind.TearDown, StateBefore = vm.State, StateAfter = VmState.Stopped, Applied = false, Detail = releases });
                continue;
            }

            var errors = await VmTeardown.ReleaseAsync(_runner, vm, d.Handles, null, ct).ConfigureAwait(false);
            if (errors.Count == 0)
            {
                var state = vm.State == VmState.Broken ? VmState.Broken : VmState.Stopped;
                store.SetState(vm, state, vm.State == VmState.Broken ? vm.LastError : null);
                actions.Add(new VmReconcileAction { Name = vm.Name, Action = VmReconcileActionKind.TearDown, StateBefore = vm.State, StateAfter = state, Applied = true, Detail = releases });
            }
            else
            {
                var message = "Reconcile teardown failed: " + string.Join("; ", errors);
                store.SetState(vm, VmState.Broken, message);
                if (d.Handles is { } left) Own(left, ownedTaps, ownedLoops);
                actions.Add(new VmReconcileAction { Name = vm.Name, Action = VmReconcileActionKind.TearDown, StateBefore = vm.State, StateAfter = VmState.Broken, Applied = true, Detail = releases, Error = message, ErrorId = "VmTeardownFailed" });
            }
        }

        var orphans = await OrphansAsync(vms, ownedTaps, ownedLoops, apply && removeOrphans, ct).ConfigureAwait(false);
        actions.AddRange(orphans);
        actions.AddRange(await BridgesAsync(vms, actions, orphans, apply, removeOrphans, ct).ConfigureAwait(false));
        return actions;
    }

    /// <summary>
    /// A live qemu's record follows what qemu says its CPUs do (<see cref="QemuRunStatus"/>), so a pause or
    /// resume done outside VmTools (another QMP client, werror=stop on an I/O error) is corrected. When the
    /// socket does not answer in time the record is kept, with a warning: a busy or hung monitor is no
    /// reason to demote a live VM, and reconcile must not hang on it. Only live VMs are asked, one at a
    /// time and, when applying, under their lock, so the answer cannot race a Suspend or Resume of the
    /// same VM; the cost is bounded by the timeout per live VM.
    /// </summary>
    private static async Task<(VmState After, string Said, string? Warning)> AskQemuAsync(FlightVm vm, CancellationToken ct)
    {
        try
        {
            var status = await QemuRunStatus.QueryAsync(vm.QmpSocketPath, QmpStatusTimeout, ct).ConfigureAwait(false);
            var warning = status.Unusual
                ? $"qemu reports status '{status.Status}' (CPUs halted, not by a pause request): recorded as Paused; Resume-FlightVm may not bring the guest back until its cause is dealt with"
                : null;
            return (status.State, "QMP status " + status.Status, warning);
        }
        catch (VmToolsException e) when (e.ErrorId == "VmQmpFailed")
        {
            // Without qemu's word the record stands: a paused VM stays paused, any other live VM runs.
            var kept = vm.State == VmState.Paused ? VmState.Paused : VmState.Running;
            return (kept, "QMP did not answer", $"qemu is alive but its QMP socket did not answer ({e.Message}); state kept as {kept}");
        }
    }

    private async Task<List<VmReconcileAction>> OrphansAsync(IReadOnlyList<FlightVm> vms, HashSet<string> ownedTaps, HashSet<string> ownedLoops, bool remove, CancellationToken ct)
    {
        var result = new List<VmReconcileAction>();
        var prefix = VmNaming.TapPrefix(_paths);
        if (Directory.Exists("/sys/class/net"))
        {
            foreach (var tap in Directory.EnumerateFileSystemEntries("/sys/class/net", prefix + "*").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal))
            {
                if (ownedTaps.Contains(tap)) continue;
                var error = remove ? await TapDevice.DeleteAsync(_runner, tap, ct).ConfigureAwait(false) : null;
                result.Add(new VmReconcileAction { Name = tap, Action = VmReconcileActionKind.RemoveOrphanTap, Applied = remove && error is null, Detail = "tap with this state directory's prefix owned by no VM", Error = error, ErrorId = error is null ? null : "VmOrphanRemoveFailed" });
            }
        }

        var vmRoot = Path.GetFullPath(_paths.VmDirectory) + "/";
        var bases = vms.Where(v => v.DiskMode == VmDiskMode.DmSnapshot).Select(v => v.ImagePath).ToHashSet(StringComparer.Ordinal);
        foreach (var loop in LoopDevices.List())
        {
            if (ownedLoops.Contains(loop.Device)) continue;
            if (!loop.BackingFile.StartsWith(vmRoot, StringComparison.Ordinal) && !bases.Contains(loop.BackingFile)) continue;
            string? error = null;
            if (remove)
            {
                var r = await _runner.RunAsync(CommandSpec.Of("losetup", "-d", loop.Device), ct).ConfigureAwait(false);
                if (!r.Succeeded) error = $"'{r.Command}' exited {r.ExitCode}: {r.StandardError.Trim()}";
            }

            result.Add(new VmReconcileAction { Name = loop.Device, Action = VmReconcileActionKind.RemoveOrphanLoop, Applied = remove && error is null, Detail = "loop backed by " + loop.BackingFile + ", named by no VM's handles", Error = error, ErrorId = error is null ? null : "VmOrphanRemoveFailed" });
        }

        return result;
    }

    /// <summary>
    /// Last, once dead VMs have lost their taps: the DHCP servers and bridges VmTools created that no VM
    /// uses any more. For the plan, a bridge is in use when a VM on it would still be starting, running
    /// or paused, and the taps of VMs torn down (and orphans, when removed) count as gone.
    /// </summary>
    private Task<List<VmReconcileAction>> BridgesAsync(IReadOnlyList<FlightVm> vms, List<VmReconcileAction> actions, List<VmReconcileAction> orphans, bool apply, bool removeOrphans, CancellationToken ct)
    {
        var after = actions.Where(a => a.StateAfter is not null).GroupBy(a => a.Name).ToDictionary(g => g.Key, g => g.Last().StateAfter!.Value, StringComparer.Ordinal);
        var active = new HashSet<string>(StringComparer.Ordinal);
        var goneTaps = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vm in vms.Where(v => v.BridgeName is not null))
        {
            var state = after.GetValueOrDefault(vm.Name, vm.State);
            if (state is VmState.Starting or VmState.Running or VmState.Paused) active.Add(vm.BridgeName!);
            else if (vm.TapName is { } tap) goneTaps.Add(tap);
        }

        if (removeOrphans) goneTaps.UnionWith(orphans.Where(o => o.Action == VmReconcileActionKind.RemoveOrphanTap).Select(o => o.Name));
        return new BridgeNetwork(_db, _paths, _runner).ReconcileAsync(apply, active, goneTaps, ct);
    }

    private static void Own(VmHandles h, HashSet<string> taps, HashSet<string> loops)
    {
        if (h.TapDevice is { } t) taps.Add(t);
        if (h.BaseLoop is { } b) loops.Add(b);
        if (h.CowLoop is { } c) loops.Add(c);
    }

    private static string Describe(VmHandles? h)
    {
        if (h is null || h.IsEmpty) return "no kernel objects to release";
        var parts = new List<string>();
        if (h.Pid > 0) parts.Add($"pid {h.Pid} (dead)");
        if (h.DmName is { } dm) parts.Add("dm " + dm);
        if (h.CowLoop is { } c) parts.Add("loop " + c);
        if (h.BaseLoop is { } b) parts.Add("loop " + b);
        if (h.TapDevice is { } t) parts.Add("tap " + t);
        return "release " + string.Join(", ", parts);
    }
}
