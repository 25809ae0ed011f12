using VmTools.Core.CloudInit;

namespace VmTools.Core.Vms;

/// <summary>
/// The MAC Start-FlightVm gives the VM's NIC: the one asked for, else the seed's own, because the seed's
/// network-config names the NIC by it. Both known and different would leave the guest without network,
/// so that is refused before anything is allocated.
/// </summary>
public sealed record NicMacChoice(string? MacAddress, bool FromSeed)
{
    /// <param name="requested">-MacAddress, or null.</param>
    /// <param name="seedMac">The MAC the seed object carries (New-CloudInitIso's output), or null.</param>
    /// <param name="seedPath">The seed image, read for its MAC when <paramref name="seedMac"/> is null (a seed given only by path).</param>
    public static NicMacChoice For(string? requested, string? seedMac, string? seedPath)
    {
        var fromSeed = seedMac is { Length: > 0 } ? seedMac : null;
        if (fromSeed is null && seedPath is not null && File.Exists(seedPath)) fromSeed = SeedImage.MacAddressOf(seedPath);
        // An invalid requested MAC is not compared: VmLifecycle.Validate reports it as VmMacAddressInvalid.
        if (requested is not null && fromSeed is not null && MacAddresses.Normalize(requested) is { } given
            && !string.Equals(given, MacAddresses.Normalize(fromSeed), StringComparison.Ordinal))
        {
            throw new VmToolsException("VmMacAddressMismatch", FailureKind.InvalidArgument,
                $"-MacAddress {requested} differs from the seed's {fromSeed}; the seed's network-config would not find the NIC.") { Target = requested };
        }

        return requested is not null ? new NicMacChoice(requested, FromSeed: false) : new NicMacChoice(fromSeed, FromSeed: fromSeed is not null);
    }
}
