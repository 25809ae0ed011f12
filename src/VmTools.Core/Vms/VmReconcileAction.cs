namespace VmTools.Core.Vms;

public enum VmReconcileActionKind
{
    /// <summary>qemu is alive: keep it, re-seed cache and scratch file, record Running or Paused as qemu says.</summary>
    Keep,

    /// <summary>qemu is gone: release its tap, dm target and loops, then mark it stopped (or broken).</summary>
    TearDown,

    /// <summary>The scratch file cannot be read: reported, nothing done for this VM.</summary>
    ReportCorruptHandles,

    /// <summary>Another operation holds the VM's lock (a start in progress): left alone.</summary>
    SkipBusy,

    /// <summary>A tap with this state directory's prefix that no VM owns.</summary>
    RemoveOrphanTap,

    /// <summary>A loop device backed by a VmTools file that no VM's handles name.</summary>
    RemoveOrphanLoop,

    /// <summary>The DHCP server of a VmTools bridge on which no VM is starting, running or paused.</summary>
    StopDhcpServer,

    /// <summary>A bridge VmTools created, with no VM running on it and no ports left.</summary>
    RemoveBridge,
}

/// <summary>One step of a reconcile: planned (with -WhatIf) or done, with the outcome.</summary>
public sealed record VmReconcileAction
{
    /// <summary>The VM, or for orphans the device, or for DHCP servers and bridges the bridge.</summary>
    public required string Name { get; init; }

    public required VmReconcileActionKind Action { get; init; }

    public VmState? StateBefore { get; init; }

    public VmState? StateAfter { get; init; }

    public required bool Applied { get; init; }

    public string? Detail { get; init; }

    public string? Error { get; init; }

    /// <summary>Something to know though nothing failed: qemu halted the guest by itself, or its QMP socket did not answer.</summary>
    public string? Warning { get; init; }

    /// <summary>The ErrorId of <see cref="Error"/>, so the cmdlet can surface it as such.</summary>
    public string? ErrorId { get; init; }
}
