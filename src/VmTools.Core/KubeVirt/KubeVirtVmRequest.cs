using VmTools.Core.Vms;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// One VM to describe for KubeVirt: the cached base, the seed, and the same sizing Start-FlightVm takes.
/// The name defaults to the seed's hostname (its first label, lower-cased).
/// </summary>
public sealed record KubeVirtVmRequest
{
    public const string DefaultNamespace = "default";

    public required ContainerDiskImage Image { get; init; }

    public KubeVirtSeed? Seed { get; init; }

    public string? Name { get; init; }

    public string Namespace { get; init; } = DefaultNamespace;

    public int CpuCount { get; init; } = 1;

    public int MemoryMB { get; init; } = 512;

    public KubeVirtRunStrategy RunStrategy { get; init; } = KubeVirtRunStrategy.Always;

    public KubeVirtNicBinding Binding { get; init; } = KubeVirtNicBinding.Masquerade;

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The NIC's MAC when no seed names one (a FlightVm's recorded MAC); a seed's MAC must agree with it.</summary>
    public string? MacAddress { get; init; }

    /// <summary>
    /// This request completed from a FlightVm it describes: the base the VM booted (asked of
    /// <paramref name="imageOfVm"/> only when no image was given), its seed, its name as a Kubernetes name,
    /// its sizing where the caller gave none, and its recorded MAC.
    /// </summary>
    public KubeVirtVmRequest ForFlightVm(FlightVm vm, Func<ContainerDiskImage> imageOfVm, bool memoryGiven, bool cpuGiven) => this with
    {
        // Image is null until something gives one (the cmdlet builds the request before it knows).
        Image = Image ?? imageOfVm(),
        Seed = Seed ?? (vm.CloudInitPath is { } seedPath ? KubeVirtSeed.FromPath(seedPath) : null),
        Name = Name ?? KubeVirtManifestBuilder.NameFor(vm.Name),
        MemoryMB = memoryGiven ? MemoryMB : vm.MemoryMB,
        CpuCount = cpuGiven ? CpuCount : vm.CpuCount,
        MacAddress = vm.MacAddress,
    };
}
