using VmTools.Core.Host;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>What Copy-FlightVmItem checks before it connects, and the scp argv it runs.</summary>
public sealed class VmFileCopyTests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-copy");

    public void Dispose() => _dir.Dispose();

    private FlightVm Vm(VmNetworkMode network = VmNetworkMode.User) => new()
    {
        Name = "c", Id = "id", State = VmState.Stopped, ImagePath = "/b.qcow2", DiskMode = VmDiskMode.Overlay, OverlayPath = _dir.Combine("o.qcow2"),
        Directory = _dir.Path, ConsoleLogPath = _dir.Combine("console.log"), QmpSocketPath = _dir.Combine("qmp.sock"), Network = network,
        SshPort = network == VmNetworkMode.User ? 2222 : null, MacAddress = "52:54:00:00:00:01", MemoryMB = 64, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
    };

    private async Task<string> Fails(FlightVm vm, string path, string destination, bool fromGuest, bool recurse = false)
        => (await Assert.ThrowsAsync<VmToolsException>(() => VmFileCopy.CopyAsync(ProcessRunner.Instance, vm, path, destination, fromGuest, recurse, "root", null, null, null, CancellationToken.None))).ErrorId;

    [Fact]
    public async Task BadPathsAndAStoppedVm_FailWithSpecificErrorIds_BeforeConnecting()
    {
        var file = _dir.Combine("f");
        File.WriteAllText(file, "x");
        Assert.Equal("VmCopyPathInvalid", await Fails(Vm(), file, "-oProxyCommand=x", fromGuest: false));
        Assert.Equal("VmCopyPathInvalid", await Fails(Vm(), "/tmp/a\nb", _dir.Combine("g"), fromGuest: true));
        Assert.Equal("VmCopySourceNotFound", await Fails(Vm(), _dir.Combine("missing"), "/tmp/x", fromGuest: false));
        Assert.Equal("VmCopyNeedsRecurse", await Fails(Vm(), _dir.Path, "/tmp/x", fromGuest: false));
        Assert.Equal("VmCopyDestinationNotFound", await Fails(Vm(), "/etc/hostname", _dir.Combine("no", "such", "h"), fromGuest: true));
        Assert.Equal("VmSshUnavailable", await Fails(Vm(VmNetworkMode.None), file, "/tmp/x", fromGuest: false));
        Assert.Equal("VmNotRunning", await Fails(Vm(), file, "/tmp/x", fromGuest: false));
    }

    [Fact]
    public void Argv_ForcesSftp_EndsOptionsBeforeThePaths_AndEscapesGlobsOnlyInARemoteSource()
    {
        var endpoint = new VmSshEndpoint("127.0.0.1", 2222);
        var up = VmFileCopy.Command(endpoint, "/h/a*b", "/g/c*d", fromGuest: false, recurse: true, "ci", null).Arguments.ToList();
        Assert.Equal(new[] { "-s", "-r" }, up.Take(2));
        Assert.DoesNotContain("-q", up); // it would hide ssh's reason for a failed connection
        Assert.Equal(new[] { "--", "/h/a*b", "ci@127.0.0.1:/g/c*d" }, up.Skip(up.IndexOf("--")));
        Assert.Contains("Port=2222", up);

        var down = VmFileCopy.Command(endpoint, "/h/x", "/g/a*b?[c]\\", fromGuest: true, recurse: false, "ci", null).Arguments.ToList();
        Assert.Equal(new[] { "--", @"ci@127.0.0.1:/g/a\*b\?\[c\]\\", "/h/x" }, down.Skip(down.IndexOf("--")));
        Assert.Equal("ci@[::1]:/g", VmFileCopy.Command(new VmSshEndpoint("::1", 22), "/h", "/g", false, false, "ci", null).Arguments[^1]);
    }
}
