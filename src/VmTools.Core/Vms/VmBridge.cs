namespace VmTools.Core.Vms;

/// <summary>
/// The durable record of a bridge VmTools created: the /24 chosen for it when it was first needed,
/// the host's address on it (the gateway, .1) and when. Only such a bridge gets a DHCP server from
/// VmTools, gives its VMs addresses, and is ever deleted by VmTools; a bridge the user made has no record.
/// </summary>
public sealed record VmBridge(string Name, string Subnet, string Gateway, DateTimeOffset CreatedAt)
{
    /// <summary>Every VmTools bridge is a /24: .1 for the host, .2–.254 for VMs.</summary>
    public const int PrefixLength = 24;

    public const uint FirstGuestHost = 2;

    public const uint LastGuestHost = 254;

    public Ipv4Network Network => Ipv4Network.Parse(Subnet);

    public static VmBridge For(string name, Ipv4Network subnet, DateTimeOffset createdAt) => new(name, subnet.ToString(), subnet.Host(1), createdAt);
}
