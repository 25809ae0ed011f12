namespace VmTools.Core.Vms;

/// <summary>
/// The transient truth about one VM, as Get-VmHandles shows it: the handles from the cache or
/// scratch file, corrected by a fresh /proc probe, and whether the liveness rule holds.
/// </summary>
public sealed record VmHandleReport
{
    public required string Name { get; init; }

    public required VmState State { get; init; }

    public required bool Alive { get; init; }

    public int? Pid { get; init; }

    public ulong? ProcessStartTime { get; init; }

    public string? BootId { get; init; }

    public required string QmpSocketPath { get; init; }

    public string? TapName { get; init; }

    public string? BridgeName { get; init; }

    /// <summary>The address reserved on a VmTools bridge (durable, from the record).</summary>
    public string? IPAddress { get; init; }

    /// <summary>The pid of the bridge's DHCP server (dnsmasq) when VmTools runs one for it and it is alive.</summary>
    public int? DhcpServerPid { get; init; }

    public string? BaseLoop { get; init; }

    public string? CowLoop { get; init; }

    public string? DmName { get; init; }

    public string? DmDevice { get; init; }

    /// <summary>Where the handles came from: Cache, ScratchFile, Probe, Record (durable fallback), joined with '+'.</summary>
    public required string Source { get; init; }

    /// <summary>Why the scratch file could not be used, when it could not.</summary>
    public string? Error { get; init; }
}
