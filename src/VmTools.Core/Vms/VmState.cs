namespace VmTools.Core.Vms;

/// <summary>What the durable record says a VM is. Only reconcile and the lifecycle verbs change it.</summary>
public enum VmState
{
    /// <summary>Allocated and being brought up; a crash here leaves a record reconcile can demote.</summary>
    Starting,
    Running,

    /// <summary>qemu runs but the guest's CPUs are halted (QMP stop, Suspend-FlightVm, or qemu itself, e.g. io-error: reconcile records what qemu says); alive for every purpose but running guest code.</summary>
    Paused,

    Stopped,

    /// <summary>Start or teardown failed; <see cref="FlightVm.LastError"/> says why.</summary>
    Broken,
}
