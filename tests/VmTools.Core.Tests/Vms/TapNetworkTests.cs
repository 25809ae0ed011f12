using System.Globalization;
using System.Text.RegularExpressions;
using VmTools.Core.Host;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>
/// Tap networking on bridges VmTools creates, against real qemu, taps, bridges and dnsmasq: the guest
/// asks DHCP for its address (busybox udhcpc) and must get exactly the one reserved with its record,
/// and the host must reach it there.
/// </summary>
[Collection("qemu-vms")]
public sealed partial class TapNetworkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TapVm_OnAFreshVmToolsBridge_GetsExactlyItsReservedAddress_AndTheHostReachesIt()
    {
        RequireTapNetworking();
        using var bed = new VmTestBed();
        var bridgeName = bed.NewBridge();
        var vm = await bed.StartOneAsync(DhcpRequest(bed, bridgeName, "tapper"));

        // Known before boot: the record holds it, on the /24 recorded for the bridge VmTools made.
        var bridge = new BridgeStore(bed.Db, bed.Paths).Find(bridgeName);
        Assert.NotNull(bridge);
        Assert.NotNull(vm.IPAddress);
        Assert.True(bridge.Network.Contains(vm.IPAddress), $"{vm.IPAddress} is not in {bridge.Subnet}");
        Assert.EndsWith(".1", bridge.Gateway, StringComparison.Ordinal);
        Assert.Contains($"inet {bridge.Gateway}/24", Programs.MustRun("ip", "-4", "addr", "show", "dev", bridgeName));

        // The DHCP server runs detached, answers for this VM's MAC only, and keeps its files private.
        var handles = bed.Lifecycle.Handles("tapper");
        Assert.Equal(vm.IPAddress, handles.IPAddress);
        var dhcpPid = Assert.IsType<int>(handles.DhcpServerPid);
        Assert.StartsWith("dnsmasq", Path.GetFileName(File.ReadAllText($"/proc/{dhcpPid}/cmdline").Split('\0')[0]), StringComparison.Ordinal);
        Assert.Equal($"{vm.MacAddress},{vm.IPAddress}\n", File.ReadAllText(DhcpServer.HostsPath(bed.Paths, bridgeName)));
        Assert.Equal(PrivateDirectory, File.GetUnixFileMode(DhcpServer.DirectoryFor(bed.Paths, bridgeName)));

        await AssertReachableAsync(bed, vm);
    }

    [Fact]
    public async Task TapPool_OfThreeOnOneBridge_EachGetsItsReservedAddress_SshAndCopyWork_ThenAfterKill9_ReconcileRemovesTapsDhcpServerAndBridge()
    {
        RequireTapNetworking();
        using var bed = new VmTestBed();
        var bridgeName = bed.NewBridge();
        // The SSH test guest: DHCP (printing its lease), then sshd with the test key.
        var request = bed.Request(FlightVmGuest.CreateBase(bed.Directory), "pool", SshGuest.Initrd) with { Network = VmNetworkMode.Tap, BridgeName = bridgeName, MemoryMB = 256, Count = 3 };
        var results = await bed.Lifecycle.StartAsync(request, null, Ct);
        Assert.All(results, r => Assert.True(r.Error is null, r.Error?.Message));
        var vms = new List<FlightVm>();
        foreach (var r in results) vms.Add(await bed.Lifecycle.WaitAsync(r.Vm.Name, SshGuest.ReadyMarker, TimeSpan.FromSeconds(240), Ct));
        Assert.Equal(3, vms.Select(v => v.IPAddress).OfType<string>().Distinct().Count());
        Assert.All(vms, v => Assert.Equal(v.IPAddress, SshGuest.GuestAddress(v.ConsoleLogPath)));

        // SSH reaches all three at once at their reserved addresses: each answers with its own NIC's MAC.
        var answers = await Task.WhenAll(vms.Select(v => VmSsh.RunAsync(ProcessRunner.Instance, v, "cat /sys/class/net/eth0/address", SshGuest.User, SshGuest.KeyPath, null, Ct)));
        Assert.All(answers, a => Assert.True(a.ExitCode == 0, $"{a.Name}: exit {a.ExitCode} {a.ErrorOutput}"));
        Assert.Equal(vms.Select(v => v.MacAddress), answers.Select(a => a.Output.Trim()));

        // A file goes to one guest and comes back byte-identical.
        var sent = Path.Combine(bed.Directory, "payload.bin");
        File.WriteAllBytes(sent, System.Security.Cryptography.RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17));
        var back = Path.Combine(bed.Directory, "payload.back");
        await VmFileCopy.CopyAsync(ProcessRunner.Instance, vms[1], sent, "/tmp/payload.bin", fromGuest: false, recurse: false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        await VmFileCopy.CopyAsync(ProcessRunner.Instance, vms[1], "/tmp/payload.bin", back, fromGuest: true, recurse: false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        Assert.Equal(File.ReadAllBytes(sent), File.ReadAllBytes(back));

        var dhcpPid = bed.Lifecycle.Handles("pool-1").DhcpServerPid!.Value;
        var qemus = vms.Select(v => bed.Lifecycle.Handles(v.Name).Pid!.Value).ToList();
        foreach (var pid in qemus) Programs.MustRun("kill", "-9", pid.ToString(CultureInfo.InvariantCulture));
        foreach (var pid in qemus) await WaitGoneAsync(pid);

        // A fresh process's view: no handle cache, its own connection.
        HandleStore.ForgetCache();
        using var db = bed.OpenAnotherConnection();
        // The plan (-WhatIf) already counts the dead VMs' taps as gone, and changes nothing.
        var plan = await new Reconciler(db, bed.Paths).RunAsync(apply: false, removeOrphans: false, Ct);
        Assert.Contains(plan, a => a is { Action: VmReconcileActionKind.StopDhcpServer, Applied: false } && a.Name == bridgeName);
        Assert.Contains(plan, a => a is { Action: VmReconcileActionKind.RemoveBridge, Applied: false } && a.Name == bridgeName);
        Assert.True(BridgeDevice.Exists(bridgeName));
        Assert.NotNull(DhcpServer.Find(bed.Paths, bridgeName));

        var actions = await new Reconciler(db, bed.Paths).RunAsync(apply: true, removeOrphans: false, Ct);
        Assert.All(actions, a => Assert.True(a.Error is null, $"{a.Name} {a.Action}: {a.Error}"));
        Assert.Equal(vms.Select(v => v.Name), actions.Where(a => a.Action == VmReconcileActionKind.TearDown && a.Applied).Select(a => a.Name).Order());
        Assert.Contains(actions, a => a is { Action: VmReconcileActionKind.StopDhcpServer, Applied: true } && a.Name == bridgeName);
        Assert.Contains(actions, a => a is { Action: VmReconcileActionKind.RemoveBridge, Applied: true } && a.Name == bridgeName);

        Assert.All(vms, v => Assert.False(TapDevice.Exists(v.TapName!), v.TapName));
        Assert.False(BridgeDevice.Exists(bridgeName));
        // Gone, or a zombie its reaper has not collected yet: ProcessTable reads either as no process.
        Assert.True(ProcessTable.Read("/proc", dhcpPid) is null, $"dnsmasq pid {dhcpPid} still runs");
        var store = new VmStore(db, bed.Paths);
        Assert.All(vms, v => Assert.Equal(VmState.Stopped, store.Get(v.Name).State));
        // Stopped records keep their addresses (and so the bridge's subnet) until they are removed.
        Assert.Equal(vms.Select(v => v.IPAddress), vms.Select(v => store.Get(v.Name).IPAddress));
        Assert.NotNull(new BridgeStore(db, bed.Paths).Find(bridgeName));

        // Nothing left to do on a second pass.
        Assert.Empty(await new Reconciler(db, bed.Paths).RunAsync(true, false, Ct));
    }

    [Fact]
    public async Task TapVm_OnABridgeVmToolsDidNotCreate_GetsNoAddressNoDhcpServer_AndReconcileLeavesTheBridge()
    {
        RealComponent.RequireRoot("tap devices and bridges");
        using var bed = new VmTestBed();
        var bridgeName = bed.NewBridge();
        Programs.MustRun("ip", "link", "add", "name", bridgeName, "type", "bridge");
        var vm = await bed.StartOneAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "guest") with { Network = VmNetworkMode.Tap, BridgeName = bridgeName });

        Assert.Null(vm.IPAddress);
        Assert.Null(new BridgeStore(bed.Db, bed.Paths).Find(bridgeName));
        Assert.Null(bed.Lifecycle.Handles("guest").DhcpServerPid);
        Assert.False(Directory.Exists(DhcpServer.DirectoryFor(bed.Paths, bridgeName)));
        Assert.Null(VmSshEndpoint.TryOf(vm));

        await bed.Lifecycle.StopAsync("guest", TimeSpan.Zero, force: true, null, Ct);
        var actions = await new Reconciler(bed.Db, bed.Paths).RunAsync(true, false, Ct);
        Assert.DoesNotContain(actions, a => a.Action is VmReconcileActionKind.RemoveBridge or VmReconcileActionKind.StopDhcpServer);
        Assert.True(BridgeDevice.Exists(bridgeName), "the user's bridge must survive reconcile");
    }

    [Fact]
    public async Task Addresses_AreReservedInTheAllocation_AndRemoveReleasesThem_ForTheNextVm()
    {
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        // A bridge name no host has: allocation claims it without touching the kernel.
        var bridgeName = bed.NewBridge();
        var request = new VmStartRequest { ImagePath = baseImage, Name = "r", Count = 3, Network = VmNetworkMode.Tap, BridgeName = bridgeName };
        var first = bed.Lifecycle.Store.Allocate(request);
        var bridge = new BridgeStore(bed.Db, bed.Paths).Find(bridgeName)!;
        Assert.Equal(new[] { bridge.Network.Host(2), bridge.Network.Host(3), bridge.Network.Host(4) }, first.Select(v => v.IPAddress));
        Assert.Equal(first.Select(v => v.IPAddress), first.Select(v => bed.Lifecycle.Store.Get(v.Name).IPAddress));

        await bed.Lifecycle.RemoveAsync("r-2", force: false, Ct);
        var next = Assert.Single(bed.Lifecycle.Store.Allocate(request with { Name = "s", Count = 1 }));
        Assert.Equal(bridge.Network.Host(3), next.IPAddress);

        // User networking reserves nothing.
        Assert.Null(Assert.Single(bed.Lifecycle.Store.Allocate(new VmStartRequest { ImagePath = baseImage, Name = "u" })).IPAddress);
    }

    [Fact]
    public void Subnet_OverlapsNoHostNetworkAndNoOtherBridge_AndAddressesRunOutAfter253()
    {
        using var bed = new VmTestBed();
        var taken = new List<Ipv4Network>();
        var store = new BridgeStore(bed.Db, bed.Paths, () => taken);
        // Every /24 of the first pool is in use on this "host" but one.
        taken.Add(Ipv4Network.Parse("10.213.0.0/17"));
        taken.Add(Ipv4Network.Parse("10.213.128.0/18"));
        taken.Add(Ipv4Network.Parse("10.213.192.0/19"));
        taken.Add(Ipv4Network.Parse("10.213.224.0/20"));
        taken.Add(Ipv4Network.Parse("10.213.240.0/21"));
        taken.Add(Ipv4Network.Parse("10.213.248.0/22"));
        taken.Add(Ipv4Network.Parse("10.213.252.0/23"));
        taken.Add(Ipv4Network.Parse("10.213.255.0/24"));
        var a = bed.Db.InTransaction(tx => store.Claim(tx, bed.NewBridge()))!;
        Assert.Equal("10.213.254.0/24", a.Subnet);
        Assert.Equal("10.213.254.1", a.Gateway);
        // The next bridge may not take the first one's subnet: it moves to the second pool.
        var b = bed.Db.InTransaction(tx => store.Claim(tx, bed.NewBridge()))!;
        Assert.StartsWith("172.29.", b.Subnet, StringComparison.Ordinal);

        // lo exists and VmTools has no record of creating it: the user's, never claimed.
        Assert.Null(bed.Db.InTransaction(tx => store.Claim(tx, "lo")));

        var image = FlightVmGuest.CreateBase(bed.Directory);
        var request = new VmStartRequest { ImagePath = image, Name = "x", Count = 253, Network = VmNetworkMode.Tap, BridgeName = a.Name };
        Assert.Equal(253, bed.Lifecycle.Store.Allocate(request).Select(v => v.IPAddress).Distinct().Count());
        var e = Assert.Throws<VmToolsException>(() => bed.Lifecycle.Store.Allocate(request with { Name = "y", Count = 1 }));
        Assert.Equal("VmBridgeAddressesExhausted", e.ErrorId);
    }

    [Fact]
    public void HostNetworks_ReadsRoutesWithoutTheDefault_AndOverlapIsByTheShorterPrefix()
    {
        using var dir = new TempDirectory("vmtools-routes");
        var route = dir.Combine("route");
        File.WriteAllText(route, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
            + "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
            + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
            + "tun0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n");
        Assert.Equal(new[] { "192.0.2.0/24", "10.0.0.0/8" }, HostNetworks.Routes(route).Select(n => n.ToString()));
        Assert.True(Ipv4Network.Parse("10.0.0.0/8").Overlaps(Ipv4Network.Parse("10.213.7.0/24")));
        Assert.True(Ipv4Network.Parse("10.213.7.0/24").Overlaps(Ipv4Network.Parse("10.213.7.9/32")));
        Assert.False(Ipv4Network.Parse("10.213.7.0/24").Overlaps(Ipv4Network.Parse("10.213.8.0/24")));
        Assert.Contains(Ipv4Network.Parse("127.0.0.0/8"), HostNetworks.InUse(route));
    }

    /// <summary>
    /// What every tap VM on a VmTools bridge must show: the guest's DHCP client got exactly the reserved
    /// address, and the host reaches the guest there (its HTTP server answers with the VM's own MAC).
    /// </summary>
    private static async Task AssertReachableAsync(VmTestBed bed, FlightVm vm)
    {
        await bed.WaitReadyAsync(vm, 180);
        var console = File.ReadAllText(vm.ConsoleLogPath);
        var leased = GuestIp().Matches(console).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.True(leased.Count == 1, $"{vm.Name}: expected one {FlightVmGuest.IpMarker} line, console: {console}");
        Assert.Equal(vm.IPAddress, leased[0]);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var id = await http.GetStringAsync($"http://{vm.IPAddress}/id", Ct);
        Assert.Equal(vm.MacAddress, id.Trim());
    }

    private static VmStartRequest DhcpRequest(VmTestBed bed, string bridge, string name)
        => bed.Request(FlightVmGuest.CreateBase(bed.Directory), name, FlightVmGuest.DhcpInitrd) with { Network = VmNetworkMode.Tap, BridgeName = bridge };

    private static void RequireTapNetworking()
    {
        RealComponent.RequireRoot("tap devices, bridges and a DHCP server");
        RealComponent.RequireProgram("ip", "apt-get install iproute2");
        RealComponent.RequireProgram("dnsmasq", "apt-get install dnsmasq-base");
    }

    private static async Task WaitGoneAsync(int pid)
    {
        for (var i = 0; i < 100 && Directory.Exists($"/proc/{pid}"); i++) await Task.Delay(50, Ct);
    }

    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [GeneratedRegex(FlightVmGuest.IpMarker + @" (\S+)")]
    private static partial Regex GuestIp();
}
