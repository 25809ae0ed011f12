namespace VmTools.Core.Vms;

/// <summary>What a caller asks of Start-FlightVm; validated by <see cref="VmLifecycle"/> before anything is allocated.</summary>
public sealed record VmStartRequest
{
    public required string ImagePath { get; init; }

    /// <summary>The VM's name; with <see cref="Count"/> &gt; 1 each VM is named <c>Name-1</c> … <c>Name-N</c>. Null: <c>vm-&lt;id&gt;</c>.</summary>
    public string? Name { get; init; }

    public int Count { get; init; } = 1;

    public VmDiskMode DiskMode { get; init; } = VmDiskMode.Overlay;

    public VmNetworkMode Network { get; init; } = VmNetworkMode.User;

    /// <summary>The host bridge taps join (created when missing).</summary>
    public string BridgeName { get; init; } = VmNaming.DefaultBridge;

    /// <summary>Null: <c>VMTOOLS_ACCELERATOR</c>, else Auto. <see cref="VmLifecycle.StartAsync"/> resolves it (<see cref="AcceleratorProbe"/>) before allocating.</summary>
    public VmAccelerator? Accelerator { get; init; }

    public int MemoryMB { get; init; } = 512;

    public int CpuCount { get; init; } = 1;

    public string? KernelPath { get; init; }

    public string? InitrdPath { get; init; }

    public string? KernelArgs { get; init; }

    public string? CloudInitPath { get; init; }

    /// <summary>The NIC's MAC; the seed's, so its network-config matches the NIC. Null: one is allocated.</summary>
    public string? MacAddress { get; init; }

    public IReadOnlyList<string> VolumePaths { get; init; } = Array.Empty<string>();
}
