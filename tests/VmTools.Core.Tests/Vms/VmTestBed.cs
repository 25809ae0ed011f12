using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>
/// A private state directory, database and lifecycle for one test, and teardown that kills every VM
/// it started and removes every tap, loop, bridge and DHCP server it made, whatever the test did.
/// </summary>
public sealed class VmTestBed : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-vm");
    private readonly List<string> _bridges = new();
    private readonly List<string> _loops = new();

    public VmTestBed()
    {
        Paths = new VmToolsPaths(_dir.Combine("state"), _dir.Combine("cache"), _dir.Combine("run")).EnsureCreated();
        Db = StateDb.Open(Paths.DatabasePath);
        Lifecycle = new VmLifecycle(Db, Paths);
        HandleStore.ForgetCache();
    }

    public VmToolsPaths Paths { get; }

    public StateDb Db { get; }

    public VmLifecycle Lifecycle { get; }

    public string Directory => _dir.Path;

    public string Combine(params string[] parts) => _dir.Combine(parts);

    /// <summary>A bridge name unique to this test, removed at the end.</summary>
    public string NewBridge()
    {
        var name = "vmtbr" + Guid.NewGuid().ToString("N")[..6];
        _bridges.Add(name);
        return name;
    }

    public string AttachLoop(string file, bool readOnly = false)
    {
        var args = readOnly ? new[] { "-f", "--show", "--read-only", file } : new[] { "-f", "--show", file };
        var loop = Programs.MustRun("losetup", args).Trim();
        _loops.Add(loop);
        return loop;
    }

    public VmStartRequest Request(string basePath, string? name = null, string? initrd = null) => new()
    {
        ImagePath = basePath,
        Name = name,
        KernelPath = FlightVmGuest.Kernel,
        InitrdPath = initrd ?? FlightVmGuest.Initrd,
        KernelArgs = FlightVmGuest.KernelArgs,
        MemoryMB = 96,
        CpuCount = 1,
    };

    public async Task<FlightVm> StartOneAsync(VmStartRequest request)
    {
        var results = await Lifecycle.StartAsync(request, null, TestContext.Current.CancellationToken);
        var r = Assert.Single(results);
        Assert.True(r.Error is null, r.Error?.Message);
        return r.Vm;
    }

    public Task<FlightVm> WaitReadyAsync(FlightVm vm, int seconds = 90)
        => Lifecycle.WaitAsync(vm.Name, FlightVmGuest.ReadyMarker, TimeSpan.FromSeconds(seconds), TestContext.Current.CancellationToken);

    /// <summary>A fresh process's view: no cache, a new database connection.</summary>
    public StateDb OpenAnotherConnection() => StateDb.Open(Paths.DatabasePath);

    public void Dispose()
    {
        // Kill whatever qemu names a socket under this test's directory, identified by /proc.
        foreach (var p in ProcessTable.Scan().Processes.Where(p => p.CommandLine.Contains("-qmp unix:" + _dir.Path, StringComparison.Ordinal)))
        {
            ProcessSignal.Send(p, ProcessSignal.SigKill);
            ProcessSignal.WaitForExitAsync(p, TimeSpan.FromSeconds(5), CancellationToken.None).GetAwaiter().GetResult();
        }

        // And the DHCP servers of its bridges: their pid files are under this test's state directory.
        foreach (var p in ProcessTable.Scan().Processes.Where(p => p.CommandLine.Contains("--pid-file=" + _dir.Path, StringComparison.Ordinal)))
        {
            ProcessSignal.Send(p, ProcessSignal.SigKill);
            ProcessSignal.WaitForExitAsync(p, TimeSpan.FromSeconds(5), CancellationToken.None).GetAwaiter().GetResult();
        }

        var prefix = VmNaming.TapPrefix(Paths);
        if (System.IO.Directory.Exists("/sys/class/net"))
        {
            foreach (var tap in System.IO.Directory.EnumerateFileSystemEntries("/sys/class/net", prefix + "*"))
            {
                Programs.Run("ip", "link", "del", Path.GetFileName(tap));
            }
        }

        foreach (var loop in LoopDevices.List().Where(l => l.BackingFile.StartsWith(_dir.Path, StringComparison.Ordinal)).Select(l => l.Device).Concat(_loops).Distinct())
        {
            Programs.Run("losetup", "-d", loop);
        }

        foreach (var bridge in _bridges) Programs.Run("ip", "link", "del", bridge);
        HandleStore.ForgetCache();
        Db.Dispose();
        _dir.Dispose();
    }
}
