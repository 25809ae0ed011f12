namespace VmTools.Core.Vms;

/// <summary>
/// What Copy-FlightVmItem copied: <see cref="Path"/> to <see cref="Destination"/> as given (the local one made
/// absolute), the direction, and the bytes of the local side (the source sent, or what arrived; a folder's
/// files added up).
/// </summary>
public sealed record VmItemCopy(string Name, string Path, string Destination, bool FromGuest, long Length);
