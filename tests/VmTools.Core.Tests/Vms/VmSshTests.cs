using System.Net;
using System.Net.Sockets;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>The ssh argv Invoke-FlightVmCommand runs: a user can never become an ssh option, and real ssh reads the line as meant.</summary>
public sealed class VmSshTests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-ssh");

    public void Dispose() => _dir.Dispose();

    private FlightVm Vm(int port) => new()
    {
        Name = "s", Id = "id", State = VmState.Running, ImagePath = "/b.qcow2", DiskMode = VmDiskMode.Overlay, OverlayPath = _dir.Combine("o.qcow2"),
        Directory = _dir.Path, ConsoleLogPath = _dir.Combine("console.log"), QmpSocketPath = _dir.Combine("qmp.sock"), Network = VmNetworkMode.User,
        SshPort = port, MacAddress = "52:54:00:00:00:01", MemoryMB = 64, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
    };

    [Theory]
    [InlineData("-oProxyCommand=touch /tmp/pwned")]
    [InlineData("-F/etc/passwd")]
    [InlineData("root@10.0.0.1")]
    [InlineData("ro ot")]
    [InlineData("")]
    public void UserThatSshCouldReadAsAnOptionOrAnotherDestination_IsVmSshUserInvalid(string user)
        => Assert.Equal("VmSshUserInvalid", Assert.Throws<VmToolsException>(() => VmSsh.Command(Vm(2222), "true", user, null, 5)).ErrorId);

    [Fact]
    public void DoubleDash_ComesBeforeTheDestination()
    {
        var args = VmSsh.Command(Vm(2222), "uname -a", "ci", _dir.Combine("key"), 5).Arguments.ToList();
        var dashes = args.IndexOf("--");
        Assert.Equal(new[] { "--", "ci@127.0.0.1", "uname -a" }, args.Skip(dashes));
        Assert.DoesNotContain("--", args.Take(dashes));
    }

    [Fact]
    public void RealSsh_ReadsTheLineAsADestinationAndACommand()
    {
        var ssh = RealComponent.RequireProgram("ssh", "apt-get install openssh-client");
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop(); // nothing listens there now: ssh must get as far as connecting
        var spec = VmSsh.Command(Vm(port), "true", "ci", null, 5);
        var (code, _, stderr) = Programs.Run(ssh, spec.Arguments.ToArray());
        Assert.Equal(255, code);
        Assert.Contains("Connection refused", stderr);
        Assert.DoesNotContain("usage:", stderr);
    }
}
