namespace VmTools.Core.Vms;

/// <summary>
/// The durable record of a VM: what it IS (intent, identity, derived paths, state). Nothing here is a
/// momentary kernel fact: PIDs, loop devices and dm targets live in <see cref="VmHandles"/>.
/// The tap name is allocated identity (it cannot be derived), so it is kept here as well.
/// </summary>
public sealed record FlightVm
{
    public required string Name { get; init; }

    public required string Id { get; init; }

    public required VmState State { get; init; }

    public required string ImagePath { get; init; }

    public required VmDiskMode DiskMode { get; init; }

    /// <summary>The writable layer: the qcow2 overlay, or the COW file of a dm-snapshot.</summary>
    public required string OverlayPath { get; init; }

    public required string Directory { get; init; }

    public required string ConsoleLogPath { get; init; }

    public required string QmpSocketPath { get; init; }

    public required VmNetworkMode Network { get; init; }

    /// <summary>Host port forwarded to guest port 22 (user networking), else null.</summary>
    public int? SshPort { get; init; }

    public required string MacAddress { get; init; }

    public string? TapName { get; init; }

    public string? BridgeName { get; init; }

    /// <summary>
    /// The guest's address on a bridge VmTools created (tap networking), reserved when the record was
    /// allocated and handed to the NIC's MAC by that bridge's DHCP server; null for user networking
    /// and on a bridge VmTools did not create.
    /// </summary>
    public string? IPAddress { get; init; }

    /// <summary>What qemu runs the guest with (Kvm or Tcg, never Auto); null on records made before VmTools recorded it.</summary>
    public VmAccelerator? Accelerator { get; init; }

    public required int MemoryMB { get; init; }

    public required int CpuCount { get; init; }

    public string? KernelPath { get; init; }

    public string? InitrdPath { get; init; }

    public string? KernelArgs { get; init; }

    public string? CloudInitPath { get; init; }

    public IReadOnlyList<string> VolumePaths { get; init; } = Array.Empty<string>();

    public required DateTimeOffset CreatedAt { get; init; }

    public string? LastError { get; init; }

    /// <summary>Where the transient handles are kept between processes.</summary>
    public string HandlesPath => System.IO.Path.Combine(Directory, HandleStore.FileName);

    /// <summary>The device-mapper target name, derived from the id so teardown never needs to remember it.</summary>
    public string DmName => "vmtools-" + Id;

    public override string ToString() => Name;
}
