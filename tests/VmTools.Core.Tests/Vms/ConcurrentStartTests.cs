using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Allocation of names, ports, MACs, taps and directories under concurrent starters.</summary>
[Collection("qemu-vms")]
public sealed class ConcurrentStartTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TenConcurrentStarts_FromOneBase_GiveTenRunningVms_WithNoSharedPortMacTapOrDirectory()
    {
        using var bed = new VmTestBed();
        var baseImage = FlightVmGuest.CreateBase(bed.Directory);
        var tap = RealComponent.IsRoot;
        var bridge = tap ? bed.NewBridge() : null;
        // Ten starters, each with its own database connection, as ten pwsh processes would have.
        var starters = Enumerable.Range(1, 10).Select(async i =>
        {
            await Task.Yield();
            using var db = StateDb.Open(bed.Paths.DatabasePath);
            var request = bed.Request(baseImage, $"pool-{i}") with { MemoryMB = 96 };
            if (tap) request = request with { Network = VmNetworkMode.Tap, BridgeName = bridge! };
            var results = await new VmLifecycle(db, bed.Paths).StartAsync(request, null, Ct);
            var r = Assert.Single(results);
            Assert.True(r.Error is null, r.Error?.Message);
            return r.Vm;
        }).ToList();
        var vms = await Task.WhenAll(starters);

        Assert.Equal(10, vms.Select(v => v.Name).Distinct().Count());
        Assert.Equal(10, vms.Select(v => v.MacAddress).Distinct().Count());
        Assert.Equal(10, vms.Select(v => v.Directory).Distinct().Count());
        Assert.Equal(10, vms.Select(v => v.OverlayPath).Distinct().Count());
        Assert.Equal(10, vms.Select(v => v.QmpSocketPath).Distinct().Count());
        if (tap)
        {
            Assert.Equal(10, vms.Select(v => v.TapName).OfType<string>().Distinct().Count());
            Assert.All(vms, v => Assert.True(TapDevice.Exists(v.TapName!)));
        }
        else
        {
            Assert.Equal(10, vms.Select(v => v.SshPort).OfType<int>().Distinct().Count());
        }

        var processes = ProcessTable.Scan();
        var pids = vms.Select(v => HandleDiscovery.Discover(v, processes, BootId.Current)).Select(d => { Assert.True(d.Alive); return d.Process!.Pid; }).ToList();
        Assert.Equal(10, pids.Distinct().Count());
        foreach (var vm in vms) await bed.WaitReadyAsync(vm, seconds: 240);
        Assert.All(new VmStore(bed.Db, bed.Paths).List(), v => Assert.Equal(VmState.Running, v.State));
    }

    [Fact]
    public async Task CountThree_InOneCall_NamesThemNameDashN_WithDistinctPorts()
    {
        using var bed = new VmTestBed();
        var results = await bed.Lifecycle.StartAsync(bed.Request(FlightVmGuest.CreateBase(bed.Directory), "trio") with { Count = 3 }, null, Ct);
        Assert.All(results, r => Assert.Null(r.Error));
        Assert.Equal(new[] { "trio-1", "trio-2", "trio-3" }, results.Select(r => r.Vm.Name).ToArray());
        Assert.Equal(3, results.Select(r => r.Vm.SshPort).Distinct().Count());
    }

    [Fact]
    public void Allocation_FromManyConnectionsAtOnce_NeverHandsOutTheSamePortMacOrTap()
    {
        using var bed = new VmTestBed();
        var baseImage = bed.Combine("base.img");
        File.WriteAllBytes(baseImage, new byte[512]);
        var all = new System.Collections.Concurrent.ConcurrentBag<FlightVm>();
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            using var db = StateDb.Open(bed.Paths.DatabasePath);
            var store = new VmStore(db, bed.Paths);
            for (var j = 0; j < 5; j++)
            {
                foreach (var vm in store.Allocate(new VmStartRequest { ImagePath = baseImage, Name = $"a{i}-{j}", Count = 2, Network = j % 2 == 0 ? VmNetworkMode.User : VmNetworkMode.Tap })) all.Add(vm);
            }
        });
        Assert.Equal(80, all.Count);
        Assert.Equal(80, all.Select(v => v.MacAddress).Distinct().Count());
        Assert.Equal(80, all.Select(v => v.Id).Distinct().Count());
        var ports = all.Where(v => v.SshPort is not null).Select(v => v.SshPort).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
        var taps = all.Where(v => v.TapName is not null).Select(v => v.TapName).ToList();
        Assert.Equal(32, taps.Count);
        Assert.Equal(32, taps.Distinct().Count());
        Assert.All(taps, t => Assert.StartsWith(VmNaming.TapPrefix(bed.Paths), t));
        Assert.All(taps, t => Assert.True(t!.Length <= 15));
    }
}
