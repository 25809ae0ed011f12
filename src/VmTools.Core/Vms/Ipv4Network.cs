using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace VmTools.Core.Vms;

/// <summary>An IPv4 prefix (network address and length) as a number, so overlap and host addresses are arithmetic.</summary>
public readonly record struct Ipv4Network(uint Network, int PrefixLength)
{
    public uint Mask => PrefixLength == 0 ? 0u : uint.MaxValue << (32 - PrefixLength);

    /// <summary>The address <paramref name="host"/> places into the network (.1 is the first host of a /24).</summary>
    public string Host(uint host) => Format(Network + host);

    /// <summary>True when the two prefixes share any address: the shorter one contains the other's network.</summary>
    public bool Overlaps(Ipv4Network other)
    {
        var mask = PrefixLength < other.PrefixLength ? Mask : other.Mask;
        return (Network & mask) == (other.Network & mask);
    }

    public bool Contains(string address) => TryParseAddress(address, out var a) && (a & Mask) == Network;

    /// <summary>"a.b.c.d/n"; the host bits are cleared.</summary>
    public static Ipv4Network Parse(string cidr)
    {
        var slash = cidr.IndexOf('/');
        if (slash < 0 || !TryParseAddress(cidr[..slash], out var address) || !int.TryParse(cidr[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length > 32)
        {
            throw new FormatException($"'{cidr}' is not an IPv4 prefix (a.b.c.d/n).");
        }

        return Of(address, length);
    }

    public static Ipv4Network Of(uint address, int prefixLength)
    {
        var n = new Ipv4Network(0, prefixLength);
        return n with { Network = address & n.Mask };
    }

    public static bool TryParseAddress(string text, out uint address)
    {
        address = 0;
        if (!IPAddress.TryParse(text, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) return false;
        address = BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes());
        return true;
    }

    public static string Format(uint address)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, address);
        return new IPAddress(bytes).ToString();
    }

    public override string ToString() => Format(Network) + "/" + PrefixLength.ToString(CultureInfo.InvariantCulture);
}
