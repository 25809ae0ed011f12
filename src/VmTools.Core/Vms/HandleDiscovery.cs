namespace VmTools.Core.Vms;

/// <summary>What is known about one VM's handles right now, and the live process if there is one.</summary>
public sealed record DiscoveredHandles(VmHandles? Handles, ProcessEntry? Process, string Source, VmToolsException? Error)
{
    public bool Alive => Process is not null;
}

/// <summary>
/// Rebuilds a VM's handles from the cache, the scratch file and the OS. The live process (found by
/// its QMP socket in the /proc snapshot) wins over a stale scratch PID; when nothing is alive the
/// recorded handles are still returned, so teardown knows which tap, loops and dm target to release.
/// </summary>
public static class HandleDiscovery
{
    public static DiscoveredHandles Discover(FlightVm vm, ProcessTable processes, string bootId)
    {
        var sources = new List<string>();
        VmToolsException? error = null;
        var recorded = HandleStore.Cached(vm);
        if (recorded is not null)
        {
            sources.Add("Cache");
        }
        else
        {
            try
            {
                recorded = HandleStore.ReadFile(vm);
                if (recorded is not null) sources.Add("ScratchFile");
            }
            catch (VmToolsException e)
            {
                error = e;
            }
        }

        var process = VmLiveness.Process(vm, recorded, processes, bootId);
        var handles = recorded;
        if (process is null && processes.FindByQmpSocket(vm.QmpSocketPath) is { } live)
        {
            handles = (recorded ?? FromRecord(vm) ?? new VmHandles()) with { Pid = live.Pid, ProcessStartTime = live.StartTime, BootId = bootId, QmpSocket = vm.QmpSocketPath };
            process = live;
            sources.Add("Probe");
        }
        else if (process is not null)
        {
            sources.Add("Probe");
        }

        if (handles is null && FromRecord(vm) is { } fallback)
        {
            handles = fallback;
            sources.Add("Record");
        }

        return new DiscoveredHandles(handles, process, sources.Count == 0 ? "None" : string.Join('+', sources), error);
    }

    /// <summary>
    /// What can be known without a scratch file: the tap (durable identity), the dm target (derived
    /// from the id) and loops whose backing file is this VM's COW file.
    /// </summary>
    public static VmHandles? FromRecord(FlightVm vm)
    {
        var tap = vm.TapName is { } t && TapDevice.Exists(t) ? t : null;
        string? dm = null, cowLoop = null;
        if (vm.DiskMode == VmDiskMode.DmSnapshot)
        {
            if (File.Exists("/dev/mapper/" + vm.DmName)) dm = vm.DmName;
            cowLoop = LoopDevices.List().FirstOrDefault(l => l.BackingFile == vm.OverlayPath)?.Device;
        }

        return tap is null && dm is null && cowLoop is null ? null : new VmHandles { TapDevice = tap, DmName = dm, DmDevice = dm is null ? null : "/dev/mapper/" + dm, CowLoop = cowLoop };
    }

    /// <summary>The report Get-VmHandles shows; with <paramref name="paths"/>, also the pid of the DHCP server of the VM's bridge.</summary>
    public static VmHandleReport Report(FlightVm vm, DiscoveredHandles d, State.VmToolsPaths? paths = null) => new()
    {
        Name = vm.Name,
        State = vm.State,
        Alive = d.Alive,
        Pid = d.Handles is { Pid: > 0 } h ? h.Pid : null,
        ProcessStartTime = d.Handles is { Pid: > 0 } h2 ? h2.ProcessStartTime : null,
        BootId = d.Handles?.BootId,
        QmpSocketPath = vm.QmpSocketPath,
        TapName = d.Handles?.TapDevice,
        BridgeName = vm.BridgeName,
        IPAddress = vm.IPAddress,
        DhcpServerPid = paths is not null && vm is { IPAddress: not null, BridgeName: { } bridge } ? DhcpServer.Find(paths, bridge)?.Pid : null,
        BaseLoop = d.Handles?.BaseLoop,
        CowLoop = d.Handles?.CowLoop,
        DmName = d.Handles?.DmName,
        DmDevice = d.Handles?.DmDevice,
        Source = d.Source,
        Error = d.Error?.Message,
    };
}
