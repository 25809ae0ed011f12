using System.Globalization;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace VmTools.Core.Vms;

/// <summary>
/// The IPv4 prefixes this host already uses: every interface address with its prefix, and every
/// route of the main table except the default one (which covers everything and says nothing). A
/// subnet VmTools picks for a bridge must overlap none of them, or the host would route the guests'
/// addresses somewhere else (or the other network's into the bridge).
/// </summary>
public static class HostNetworks
{
    public static IReadOnlyList<Ipv4Network> InUse(string procRoute = "/proc/net/route")
    {
        var result = new List<Ipv4Network>();
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            foreach (var a in nic.GetIPProperties().UnicastAddresses)
            {
                if (a.Address.AddressFamily != AddressFamily.InterNetwork) continue;
                Ipv4Network.TryParseAddress(a.Address.ToString(), out var address);
                result.Add(Ipv4Network.Of(address, a.PrefixLength));
            }
        }

        result.AddRange(Routes(procRoute));
        return result;
    }

    /// <summary>/proc/net/route: destination and mask are hex of the address in network byte order read as a host-order number.</summary>
    internal static IEnumerable<Ipv4Network> Routes(string procRoute)
    {
        string[] lines;
        try { lines = File.ReadAllLines(procRoute); }
        catch (IOException) { yield break; }
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 8) continue;
            if (!uint.TryParse(f[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var dst) || !uint.TryParse(f[7], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var mask)) continue;
            if (mask == 0) continue;
            var length = System.Numerics.BitOperations.PopCount(mask);
            yield return Ipv4Network.Of(BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(dst) : dst, length);
        }
    }
}
