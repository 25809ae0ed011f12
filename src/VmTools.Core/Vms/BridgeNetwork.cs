using VmTools.Core.Host;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// The network VmTools gives a bridge it created: the bridge device with the gateway address (.1),
/// and a DHCP server whose static leases are the VM records holding addresses on it. Brought up
/// (or refreshed) before a VM's tap joins, refreshed when a record goes, and taken down by reconcile
/// once no VM on it is starting, running or paused. All of it under the bridge's lock; the user's own
/// bridges are never touched.
/// </summary>
public sealed class BridgeNetwork
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);
    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;
    private readonly ICommandRunner _runner;

    public BridgeNetwork(StateDb db, VmToolsPaths paths, ICommandRunner? runner = null)
    {
        _db = db;
        _paths = paths;
        _runner = runner ?? ProcessRunner.Instance;
        Bridges = new BridgeStore(db, paths);
    }

    public BridgeStore Bridges { get; }

    /// <summary>True when a start on <paramref name="bridge"/> would make VmTools run its DHCP server (the bridge is VmTools' or does not exist yet).</summary>
    public bool WouldManage(string bridge) => !BridgeDevice.Exists(bridge) || Bridges.Find(bridge) is not null;

    /// <summary>Creates the bridge when missing, writes the static leases and starts the DHCP server (or makes it re-read them).</summary>
    public async Task EnsureAsync(VmBridge bridge, CancellationToken ct)
    {
        using var held = await VmLock.AcquireBridgeAsync(_paths, bridge.Name, LockTimeout, ct).ConfigureAwait(false);
        await BridgeDevice.CreateAsync(_runner, bridge, ct).ConfigureAwait(false);
        DhcpServer.WriteHosts(_paths, bridge, Bridges.StaticLeases(bridge));
        await DhcpServer.EnsureRunningAsync(_runner, _paths, bridge, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// After a record holding an address on <paramref name="bridgeName"/> was deleted: its lease leaves the
    /// hosts file. A bridge no longer in the kernel whose last address went loses its record and folder.
    /// </summary>
    public async Task ReleaseAddressAsync(string bridgeName, CancellationToken ct)
    {
        using var held = await VmLock.AcquireBridgeAsync(_paths, bridgeName, LockTimeout, ct).ConfigureAwait(false);
        if (Bridges.Find(bridgeName) is not { } bridge) return;
        if (!BridgeDevice.Exists(bridgeName) && !Bridges.HoldsAddresses(bridgeName))
        {
            await DhcpServer.StopAsync(_paths, bridgeName, ct).ConfigureAwait(false);
            Forget(bridgeName, null);
            return;
        }

        if (Directory.Exists(DhcpServer.DirectoryFor(_paths, bridgeName)))
        {
            DhcpServer.WriteHosts(_paths, bridge, Bridges.StaticLeases(bridge));
            DhcpServer.Reload(_paths, bridgeName);
        }
    }

    /// <summary>
    /// Reconcile's last step: for each VmTools bridge with no starting, running or paused VM, stops its
    /// DHCP server and deletes the bridge when it has no ports left. With <paramref name="apply"/> false,
    /// plans it from what the VM steps would leave: <paramref name="plannedActive"/> bridges keep their
    /// VMs, and ports named in <paramref name="plannedGoneTaps"/> would be gone.
    /// </summary>
    public async Task<List<VmReconcileAction>> ReconcileAsync(bool apply, IReadOnlySet<string> plannedActive, IReadOnlySet<string> plannedGoneTaps, CancellationToken ct)
    {
        var actions = new List<VmReconcileAction>();
        foreach (var bridge in Bridges.List())
        {
            ct.ThrowIfCancellationRequested();
            if (!apply)
            {
                if (plannedActive.Contains(bridge.Name)) continue;
                if (DhcpServer.Find(_paths, bridge.Name) is { } dhcp) actions.Add(StopAction(bridge, dhcp, false, null));
                if (BridgeDevice.Exists(bridge.Name) && BridgeDevice.Ports(bridge.Name).All(plannedGoneTaps.Contains)) actions.Add(RemoveAction(bridge, false, null));
                continue;
            }

            VmLock held;
            try
            {
                held = await VmLock.AcquireBridgeAsync(_paths, bridge.Name, LockTimeout, ct).ConfigureAwait(false);
            }
            catch (VmToolsException e)
            {
                actions.Add(new VmReconcileAction { Name = bridge.Name, Action = VmReconcileActionKind.SkipBusy, Applied = false, Detail = e.Message });
                continue;
            }

            using (held)
            {
                // The write lock held while deciding and deleting: a starter's allocation either came first
                // (its Starting VM keeps the bridge) or comes after (and finds no bridge, so makes it again).
                using var tx = _db.Connection.BeginTransaction(deferred: false);
                if (Bridges.HasActiveVms(bridge.Name, tx))
                {
                    tx.Commit();
                    continue;
                }

                if (DhcpServer.Find(_paths, bridge.Name) is { } dhcp)
                {
                    actions.Add(StopAction(bridge, dhcp, true, await DhcpServer.StopAsync(_paths, bridge.Name, ct).ConfigureAwait(false)));
                }

                if (BridgeDevice.Exists(bridge.Name) && BridgeDevice.Ports(bridge.Name).Count == 0)
                {
                    actions.Add(RemoveAction(bridge, true, await BridgeDevice.DeleteAsync(_runner, bridge.Name, ct).ConfigureAwait(false)));
                }

                // Stopped records keep their addresses (and so the subnet) until they are removed.
                if (!BridgeDevice.Exists(bridge.Name) && !Bridges.HoldsAddresses(bridge.Name, tx)) Forget(bridge.Name, tx);
                tx.Commit();
            }
        }

        return actions;
    }

    private void Forget(string bridgeName, Microsoft.Data.Sqlite.SqliteTransaction? tx)
    {
        Bridges.Delete(bridgeName, tx);
        var dir = DhcpServer.DirectoryFor(_paths, bridgeName);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    private static VmReconcileAction StopAction(VmBridge bridge, ProcessEntry dhcp, bool applied, string? error) => new()
    {
        Name = bridge.Name, Action = VmReconcileActionKind.StopDhcpServer, Applied = applied && error is null,
        Detail = $"dnsmasq pid {dhcp.Pid} serves {bridge.Subnet}, where no VM runs", Error = error, ErrorId = error is null ? null : "VmDhcpServerStopFailed",
    };

    private static VmReconcileAction RemoveAction(VmBridge bridge, bool applied, string? error) => new()
    {
        Name = bridge.Name, Action = VmReconcileActionKind.RemoveBridge, Applied = applied && error is null,
        Detail = $"bridge created by VmTools ({bridge.Subnet}) with no ports left", Error = error, ErrorId = error is null ? null : "VmBridgeRemoveFailed",
    };
}
