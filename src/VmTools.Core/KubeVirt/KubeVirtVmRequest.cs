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
}
