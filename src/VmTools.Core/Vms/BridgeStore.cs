using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// The bridges VmTools created (table <c>vm_bridges</c>) and the addresses VMs reserve on them
/// (column <c>vms.ip_address</c>). Claiming a bridge and reserving addresses run inside the VM
/// allocation transaction, so the address is known before qemu starts and two processes never
/// reserve the same one.
/// </summary>
public sealed class BridgeStore
{
    /// <summary>Where subnets are looked for, in order: private ranges rarely used by hosts and VPNs first.</summary>
    private static readonly Ipv4Network[] SubnetPools = { Ipv4Network.Parse("10.213.0.0/16"), Ipv4Network.Parse("172.29.0.0/16") };

    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;
    private readonly Func<IReadOnlyList<Ipv4Network>> _hostNetworks;

    public BridgeStore(StateDb db, VmToolsPaths paths, Func<IReadOnlyList<Ipv4Network>>? hostNetworks = null)
    {
        _db = db;
        _paths = paths;
        _hostNetworks = hostNetworks ?? (() => HostNetworks.InUse());
    }

    public VmBridge? Find(string name, SqliteTransaction? tx = null)
    {
        using var cmd = _db.Command("SELECT name, subnet, gateway, created_at FROM vm_bridges WHERE name = $n", tx, ("$n", name));
        using var r = cmd.ExecuteReader();
        return r.Read() ? Read(r) : null;
    }

    public IReadOnlyList<VmBridge> List(SqliteTransaction? tx = null)
    {
        using var cmd = _db.Command("SELECT name, subnet, gateway, created_at FROM vm_bridges ORDER BY name", tx);
        using var r = cmd.ExecuteReader();
        var list = new List<VmBridge>();
        while (r.Read()) list.Add(Read(r));
        return list;
    }

    /// <summary>
    /// The bridge's record when VmTools manages it, else null (the user's own bridge: it exists and
    /// VmTools has no record of creating it). A bridge that does not exist yet is claimed: a /24
    /// overlapping nothing on the host is chosen and recorded, and the caller creates the bridge.
    /// </summary>
    public VmBridge? Claim(SqliteTransaction tx, string name)
    {
        var known = Find(name, tx);
        var inKernel = BridgeDevice.Exists(name);
        if (known is null)
        {
            if (inKernel) return null;
            var created = VmBridge.For(name, ChooseSubnet(tx, name), DateTimeOffset.UtcNow);
            _db.Execute("INSERT INTO vm_bridges (name, subnet, gateway, created_at) VALUES ($n, $s, $g, $t)", tx,
                ("$n", created.Name), ("$s", created.Subnet), ("$g", created.Gateway), ("$t", created.CreatedAt.ToString("O")));
            return created;
        }

        // Ours, but not in the kernel now (reconcile removed it, or the host rebooted): it is made again
        // with the recorded subnet, which must still be free on the host.
        if (inKernel || !_hostNetworks().Any(known.Network.Overlaps)) return known;
        if (HoldsAddresses(name, tx))
        {
            throw new VmToolsException("VmBridgeSubnetConflict", FailureKind.ResourceExists,
                $"Bridge '{name}' was given {known.Subnet}, which the host now uses too; VM records still hold addresses in it. Remove them (Remove-FlightVm) so a new subnet can be chosen, or use another -Bridge.") { Target = name };
        }

        var moved = VmBridge.For(name, ChooseSubnet(tx, name), known.CreatedAt);
        _db.Execute("UPDATE vm_bridges SET subnet = $s, gateway = $g WHERE name = $n", tx, ("$n", name), ("$s", moved.Subnet), ("$g", moved.Gateway));
        return moved;
    }

    /// <summary>The lowest free guest address (.2–.254) of the bridge; records of every state hold theirs until removed.</summary>
    public string ReserveAddress(SqliteTransaction tx, VmBridge bridge)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        using (var cmd = _db.Command("SELECT ip_address FROM vms WHERE bridge_name = $b AND ip_address IS NOT NULL", tx, ("$b", bridge.Name)))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) used.Add(r.GetString(0));
        }

        var network = bridge.Network;
        for (var host = VmBridge.FirstGuestHost; host <= VmBridge.LastGuestHost; host++)
        {
            var address = network.Host(host);
            if (!used.Contains(address)) return address;
        }

        throw new VmToolsException("VmBridgeAddressesExhausted", FailureKind.LimitsExceeded,
            $"All {VmBridge.LastGuestHost - VmBridge.FirstGuestHost + 1} addresses of bridge '{bridge.Name}' ({bridge.Subnet}) are held by VM records; remove some (Remove-FlightVm) or use another -Bridge.") { Target = bridge.Name };
    }

    /// <summary>MAC → address of every record holding an address on the bridge: the DHCP server's static leases.</summary>
    public IReadOnlyList<(string MacAddress, string IPAddress)> StaticLeases(VmBridge bridge, SqliteTransaction? tx = null)
    {
        using var cmd = _db.Command("SELECT mac_address, ip_address FROM vms WHERE bridge_name = $b AND ip_address IS NOT NULL ORDER BY ip_address", tx, ("$b", bridge.Name));
        using var r = cmd.ExecuteReader();
        var network = bridge.Network;
        var list = new List<(string, string)>();
        while (r.Read())
        {
            if (network.Contains(r.GetString(1))) list.Add((r.GetString(0), r.GetString(1)));
        }

        return list;
    }

    public bool HoldsAddresses(string name, SqliteTransaction? tx = null)
    {
        using var cmd = _db.Command("SELECT 1 FROM vms WHERE bridge_name = $b AND ip_address IS NOT NULL LIMIT 1", tx, ("$b", name));
        return cmd.ExecuteScalar() is not null;
    }

    /// <summary>True while a VM on the bridge is starting, running or paused: its DHCP server and bridge are in use.</summary>
    public bool HasActiveVms(string name, SqliteTransaction? tx = null)
    {
        using var cmd = _db.Command("SELECT 1 FROM vms WHERE bridge_name = $b AND state IN ('Starting', 'Running', 'Paused') LIMIT 1", tx, ("$b", name));
        return cmd.ExecuteScalar() is not null;
    }

    public void Delete(string name, SqliteTransaction? tx = null) => _db.Execute("DELETE FROM vm_bridges WHERE name = $n", tx, ("$n", name));

    /// <summary>
    /// A /24 from <see cref="SubnetPools"/> that overlaps no address or route of the host and no other
    /// recorded bridge. The search starts at an offset derived from the state directory and bridge
    /// name, so two state directories claiming bridges at the same moment rarely try the same subnet.
    /// </summary>
    private Ipv4Network ChooseSubnet(SqliteTransaction tx, string name)
    {
        var taken = _hostNetworks().Concat(List(tx).Where(b => b.Name != name).Select(b => b.Network)).ToList();
        var seed = SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(_paths.StateDirectory) + "\n" + name));
        foreach (var pool in SubnetPools)
        {
            var count = 1u << (VmBridge.PrefixLength - pool.PrefixLength);
            for (var i = 0u; i < count; i++)
            {
                var candidate = Ipv4Network.Of(pool.Network + (((seed[0] + i) % count) << (32 - VmBridge.PrefixLength)), VmBridge.PrefixLength);
                if (!taken.Any(candidate.Overlaps)) return candidate;
            }
        }

        throw new VmToolsException("VmBridgeSubnetExhausted", FailureKind.LimitsExceeded,
            $"No /24 in {string.Join(" or ", SubnetPools)} is free of the host's addresses and routes for bridge '{name}'; create the bridge yourself (VmTools then leaves its addressing to you).") { Target = name };
    }

    private static VmBridge Read(SqliteDataReader r)
        => new(r.GetString(0), r.GetString(1), r.GetString(2), DateTimeOffset.Parse(r.GetString(3), System.Globalization.CultureInfo.InvariantCulture));
}
