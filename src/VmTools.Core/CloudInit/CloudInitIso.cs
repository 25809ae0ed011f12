namespace VmTools.Core.CloudInit;

/// <summary>
/// A written seed image. <see cref="Path"/> binds to <c>Start-FlightVm -CloudInit</c> by property name.
/// </summary>
public sealed record CloudInitIso(string Path, long Size, string VolumeLabel, IReadOnlyList<string> Files)
{
    public int FileCount => Files.Count;
}
