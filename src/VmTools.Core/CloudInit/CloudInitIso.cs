namespace VmTools.Core.CloudInit;

/// <summary>
/// A written seed image. <c>Start-FlightVm -CloudInit</c> takes its <see cref="Path"/>, and its
/// <see cref="MacAddress"/> for the NIC, so the seed's network-config finds the NIC.
/// </summary>
public sealed record CloudInitIso(string Path, long Size, string VolumeLabel, IReadOnlyList<string> Files)
{
    public int FileCount => Files.Count;

    /// <summary>The MAC the seed's network-config names; null when it names none, or more than one.</summary>
    public string? MacAddress { get; init; }
}
