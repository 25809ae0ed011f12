using System.Diagnostics;
using System.Security.Cryptography;
using VmTools.Core.Host;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>
/// One VM booted the way Start-FlightVm boots it (the core's lifecycle, -Network User) from the SSH test guest,
/// shared by the tests of <see cref="VmSshGuestTests"/>: booting costs seconds under TCG.
/// </summary>
public sealed class SshGuestVm : IAsyncLifetime
{
    public VmTestBed Bed { get; } = new();

    public FlightVm Vm { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var request = Bed.Request(FlightVmGuest.CreateBase(Bed.Directory), "sshguest", SshGuest.Initrd) with { MemoryMB = 256, Network = VmNetworkMode.User };
        var vm = await Bed.StartOneAsync(request);
        // The console marker, not the SSH banner: under TCG sshd takes seconds to answer a connection, and the
        // banner probe's short attempts pile up unauthenticated connections until sshd drops them (MaxStartups).
        Vm = await Bed.Lifecycle.WaitAsync(vm.Name, SshGuest.ReadyMarker, TimeSpan.FromSeconds(180), CancellationToken.None);
    }

    public ValueTask DisposeAsync()
    {
        Bed.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>SSH into a real guest: a command, a timeout that ends the command in the guest too, and scp both ways.</summary>
[Collection("qemu-vms")]
public sealed class VmSshGuestTests(SshGuestVm guest) : IClassFixture<SshGuestVm>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<VmCommandResult> Run(string command, TimeSpan? timeout = null)
        => VmSsh.RunAsync(ProcessRunner.Instance, guest.Vm, command, SshGuest.User, SshGuest.KeyPath, timeout, Ct);

    [Fact]
    public async Task UserNetworkVm_RunsUnameOverSsh_WithExitCodeZero_AndTheGuestPrintedItsLease()
    {
        var r = await Run("uname -a");
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.ErrorOutput}");
        Assert.StartsWith("Linux ", r.Output);
        Assert.Equal(string.Empty, r.ErrorOutput);
        Assert.Equal("10.0.2.15", SshGuest.GuestAddress(guest.Vm.ConsoleLogPath)); // qemu's user network leases this address

        var failing = await Run("echo out; echo err >&2; exit 7");
        Assert.Equal((7, "out\n", "err\n"), (failing.ExitCode, failing.Output, failing.ErrorOutput));
    }

    [Fact]
    public async Task Timeout_FailsWithVmCommandTimeout_WithinSeconds_AndTheCommandIsGoneFromTheGuest()
    {
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<VmToolsException>(() => Run("sleep 600", TimeSpan.FromSeconds(3)));
        Assert.Equal(("VmCommandTimeout", FailureKind.OperationTimeout), (e.ErrorId, e.Kind));
        Assert.InRange(clock.Elapsed.TotalSeconds, 2.9, 15); // the timer's millisecond tick may end a hair before the stopwatch's 3 s

        // sshd notices the dropped connection and hangs up the terminal a moment later.
        VmCommandResult ps = null!;
        for (var i = 0; i < 20; i++)
        {
            ps = await Run("ps");
            if (!ps.Output.Contains("sleep 600", StringComparison.Ordinal)) break;
            await Task.Delay(250, Ct);
        }

        Assert.Equal(0, ps.ExitCode);
        Assert.Contains("sshd", ps.Output); // ps really lists the guest's processes
        Assert.DoesNotContain("sleep 600", ps.Output);

        var quick = await Run("echo out; echo err >&2", TimeSpan.FromSeconds(30));
        Assert.Equal(0, quick.ExitCode);
        Assert.Equal("out\nerr\n", quick.Output); // a terminal has one stream, and "\r\n" is read as "\n"
    }

    [Fact]
    public async Task Scp_RoundTripsAFiveMegabyteRandomFile_ByteForByte()
    {
        var sent = guest.Bed.Combine("random.bin");
        var data = RandomNumberGenerator.GetBytes(5 * 1024 * 1024);
        await File.WriteAllBytesAsync(sent, data, Ct);

        var up = await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, sent, "/tmp/random.bin", fromGuest: false, recurse: false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        Assert.Equal(data.Length, up.Length);
        Assert.Equal("5242880 /tmp/random.bin", (await Run("wc -c /tmp/random.bin")).Output.Trim());

        var back = guest.Bed.Combine("back");
        Directory.CreateDirectory(back);
        var down = await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, "/tmp/random.bin", back, fromGuest: true, recurse: false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        Assert.Equal((true, (long)data.Length), (down.FromGuest, down.Length));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(back, "random.bin"), Ct)));
    }

    [Fact]
    public async Task Scp_TakesTheGuestPathLiterally_NoShellAndNoGlob()
    {
        var local = guest.Bed.Combine("odd.txt");
        await File.WriteAllTextAsync(local, "odd\n", Ct);
        // A shell would run the command substitution; sftp's glob would take the pattern to match the decoy.
        const string odd = "/tmp/x $(touch pwned) ;'\"*?[.txt";
        await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, local, odd, false, false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        await Run("echo decoy > '/tmp/x $(touch pwned) ;'\\''\"decoy?[.txt'");
        var listing = await Run("ls /tmp; for d in / /root /tmp; do test -e $d/pwned && echo PWNED; done");
        Assert.DoesNotContain("PWNED", listing.Output);
        Assert.Contains("x $(touch pwned) ;'\"*?[.txt", listing.Output);
        Assert.Contains("x $(touch pwned) ;'\"decoy?[.txt", listing.Output);

        var fetched = guest.Bed.Combine("fetched.txt");
        await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, odd, fetched, true, false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        Assert.Equal("odd\n", await File.ReadAllTextAsync(fetched, Ct));
    }
}
