namespace VmTools.Core.Vms;

/// <summary>
/// The one liveness rule: the recorded PID exists in this boot, started at the recorded time, and its
/// command line names this VM's QMP socket. Anything less is not our qemu and must never be signalled.
/// </summary>
public static class VmLiveness
{
    public static bool IsAlive(FlightVm vm, VmHandles? handles, ProcessTable processes, string bootId)
        => Process(vm, handles, processes, bootId) is not null;

    /// <summary>The live qemu of <paramref name="vm"/> as recorded in <paramref name="handles"/>, or null.</summary>
    public static ProcessEntry? Process(FlightVm vm, VmHandles? handles, ProcessTable processes, string bootId)
    {
        if (handles is null || handles.Pid <= 0 || handles.BootId != bootId) return null;
        var p = processes.Get(handles.Pid);
        if (p is null || p.StartTime != handles.ProcessStartTime) return null;
        return ProcessTable.NamesQmpSocket(p, vm.QmpSocketPath) ? p : null;
    }
}
