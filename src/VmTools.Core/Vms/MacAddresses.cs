using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace VmTools.Core.Vms;

/// <summary>
/// The MAC of a VM's one NIC. It is chosen when the seed is made, because the seed's network-config
/// names the NIC by it (the only match every cloud-init renderer honours), and Start-FlightVm gives
/// qemu the same address.
/// </summary>
public static partial class MacAddresses
{
    /// <summary>A locally administered unicast MAC in qemu's 52:54:00 range.</summary>
    public static string New()
    {
        var b = RandomNumberGenerator.GetBytes(3);
        return $"52:54:00:{b[0]:x2}:{b[1]:x2}:{b[2]:x2}";
    }

    /// <summary>Lower-case, colon-separated; null for anything that is not a unicast MAC qemu would take.</summary>
    public static string? Normalize(string value)
    {
        var m = Pattern().Match(value.Trim());
        if (!m.Success) return null;
        var octets = value.Trim().Split(':', '-').Select(o => Convert.ToByte(o, 16)).ToArray();
        // Bit 0 of the first octet marks multicast; a NIC cannot have such an address.
        return (octets[0] & 1) == 1 ? null : string.Join(':', octets.Select(o => o.ToString("x2")));
    }

    public static string Require(string value, string errorId, string what)
        => Normalize(value) ?? throw new VmToolsException(errorId, FailureKind.InvalidArgument,
            $"{what} '{value}' is not a unicast MAC address like 52:54:00:12:34:56.") { Target = value };

    [GeneratedRegex("^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\\1[0-9A-Fa-f]{2}){4}$")]
    private static partial Regex Pattern();
}
