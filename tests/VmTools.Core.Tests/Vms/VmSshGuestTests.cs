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

        var upProgress = new RecordedProgress();
        var up = await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, sent, "/tmp/random.bin", fromGuest: false, recurse: false, SshGuest.User, SshGuest.KeyPath, TimeSpan.FromSeconds(120), upProgress, Ct);
        Assert.Equal(data.Length, up.Length);
        Assert.Equal("5242880 /tmp/random.bin", (await Run("wc -c /tmp/random.bin")).Output.Trim());
        Assert.All(upProgress.Reports, p => Assert.Equal(data.Length, p.BytesTotal)); // the size sent is known up front
        Assert.Equal(data.Length, upProgress.Reports.Last().BytesDone);

        var back = guest.Bed.Combine("back");
        Directory.CreateDirectory(back);
        var downProgress = new RecordedProgress();
        var down = await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, "/tmp/random.bin", back, fromGuest: true, recurse: false, SshGuest.User, SshGuest.KeyPath, TimeSpan.FromSeconds(120), downProgress, Ct);
        Assert.Equal((true, (long)data.Length), (down.FromGuest, down.Length));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(back, "random.bin"), Ct)));
        Assert.Equal(new[] { "random.bin" }, Directory.GetFileSystemEntries(back).Select(Path.GetFileName)); // the staged name was renamed, not left beside it
        Assert.Equal((data.Length, (long?)data.Length), (downProgress.Reports.Last().BytesDone, downProgress.Reports.Last().BytesTotal));
        Assert.True(downProgress.Reports.SkipLast(1).All(p => p.BytesTotal is null && p.BytesDone <= data.Length), "while scp runs, the bytes that arrived so far, of a size not known");

        // Over an existing file: its content replaced, its mode kept (a target made 0600 for a secret stays so).
        var existing = guest.Bed.Combine("existing.bin");
        File.WriteAllText(existing, "old");
        File.SetUnixFileMode(existing, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, "/tmp/random.bin", existing, true, false, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await File.ReadAllBytesAsync(existing, Ct)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(existing));

        // A folder with -Recurse: staged whole and renamed into place; a second copy merges into the folder now there.
        Assert.Equal(0, (await Run("mkdir -p /tmp/tree/sub && echo leaf > /tmp/tree/sub/leaf.txt")).ExitCode);
        var tree = await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, "/tmp/tree", back, true, true, SshGuest.User, SshGuest.KeyPath, TimeSpan.FromSeconds(120), null, Ct);
        Assert.Equal(5, tree.Length);
        Assert.Equal("leaf\n", await File.ReadAllTextAsync(Path.Combine(back, "tree", "sub", "leaf.txt"), Ct));
        Assert.Equal(new[] { "random.bin", "tree" }, Directory.GetFileSystemEntries(back).Select(Path.GetFileName).Order());
        Assert.Equal(0, (await Run("echo two > /tmp/tree/two.txt")).ExitCode);
        await VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, "/tmp/tree", back, true, true, SshGuest.User, SshGuest.KeyPath, null, null, Ct);
        Assert.Equal("two\n", await File.ReadAllTextAsync(Path.Combine(back, "tree", "two.txt"), Ct));
        Assert.Equal(new[] { "random.bin", "tree" }, Directory.GetFileSystemEntries(back).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task ConnectionsResetBeforeTheHandshake_AreTriedAgain_AndTheCommandRunsOnce()
    {
        using var proxy = new ResettingTcpProxy(VmSshEndpoint.Of(guest.Vm).Port, resets: SshHandshakeRetry.Attempts - 1);
        var throughProxy = guest.Vm with { SshPort = proxy.Port };
        var marker = "/tmp/ran-" + Guid.NewGuid().ToString("N")[..8];

        var r = await VmSsh.RunAsync(ProcessRunner.Instance, throughProxy, $"echo ran >> {marker}; wc -l < {marker}", SshGuest.User, SshGuest.KeyPath, null, Ct);

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.ErrorOutput}");
        Assert.Equal("1", r.Output.Trim()); // the command ran once: the reset attempts never reached the guest
        Assert.Equal(SshHandshakeRetry.Attempts, proxy.Accepted);
    }

    [Fact]
    public async Task ConnectionsResetEveryTime_FailWithVmSshFailed_AfterTheLastAttempt_SayingHowManyThereWere()
    {
        using var proxy = new ResettingTcpProxy(VmSshEndpoint.Of(guest.Vm).Port, resets: int.MaxValue);
        var throughProxy = guest.Vm with { SshPort = proxy.Port };

        var e = await Assert.ThrowsAsync<VmToolsException>(() => VmSsh.RunAsync(ProcessRunner.Instance, throughProxy, "true", SshGuest.User, SshGuest.KeyPath, null, Ct));

        Assert.Equal(("VmSshFailed", FailureKind.ConnectionFailed), (e.ErrorId, e.Kind));
        // The reset reaches ssh during the banner exchange, or on loopback sometimes already at connect.
        Assert.Matches($@"failed \({SshHandshakeRetry.Attempts} attempts\): (kex_exchange_identification: |ssh: connect to host 127\.0\.0\.1 port {proxy.Port}: Connection reset by peer)", e.Message);
        Assert.Equal(SshHandshakeRetry.Attempts, proxy.Accepted);
    }

    [Fact]
    public async Task AFailureAfterTheHandshake_IsNotTriedAgain()
    {
        // A key the guest does not accept: the server answered, so trying again would only fail again.
        var stranger = guest.Bed.Combine("stranger_ed25519");
        Programs.MustRun("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger);
        using var proxy = new ResettingTcpProxy(VmSshEndpoint.Of(guest.Vm).Port, resets: 0);
        var throughProxy = guest.Vm with { SshPort = proxy.Port };

        var e = await Assert.ThrowsAsync<VmToolsException>(() => VmSsh.RunAsync(ProcessRunner.Instance, throughProxy, "true", SshGuest.User, stranger, null, Ct));

        Assert.Equal("VmSshFailed", e.ErrorId);
        Assert.Contains("Permission denied", e.Message);
        Assert.DoesNotContain("attempts", e.Message);
        Assert.Equal(1, proxy.Accepted);
    }

    [Fact]
    public async Task ARemoteCommandExiting255_RunsOnce()
    {
        // ssh's own failures use 255 as well, so this one is VmSshFailed; it is not a handshake failure to try again.
        var marker = "/tmp/exit255-" + Guid.NewGuid().ToString("N")[..8];
        var e = await Assert.ThrowsAsync<VmToolsException>(() => Run($"echo ran >> {marker}; exit 255"));
        Assert.Equal("VmSshFailed", e.ErrorId);
        Assert.Equal("1", (await Run($"wc -l < {marker}")).Output.Trim());
    }

    [Fact]
    public async Task ScpAfterResetConnections_IsTriedAgain_AndCopiesByteForByte()
    {
        var data = RandomNumberGenerator.GetBytes(64 * 1024);
        Assert.Equal(0, (await Run("rm -f /tmp/reset-copy.bin")).ExitCode);
        var sent = guest.Bed.Combine("reset-copy.bin");
        await File.WriteAllBytesAsync(sent, data, Ct);
        using var proxy = new ResettingTcpProxy(VmSshEndpoint.Of(guest.Vm).Port, resets: SshHandshakeRetry.Attempts - 1);
        var throughProxy = guest.Vm with { SshPort = proxy.Port };

        await VmFileCopy.CopyAsync(ProcessRunner.Instance, throughProxy, sent, "/tmp/reset-copy.bin", fromGuest: false, recurse: false, SshGuest.User, SshGuest.KeyPath, TimeSpan.FromSeconds(120), null, Ct);
        Assert.Equal(SshHandshakeRetry.Attempts, proxy.Accepted);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), (await Run("sha256sum /tmp/reset-copy.bin")).Output.Split(' ')[0]);

        // Out of the guest, every attempt reset: VmCopyFailed naming the attempts, and nothing left beside the target.
        var folder = guest.Bed.Combine("reset-down");
        Directory.CreateDirectory(folder);
        using var refusing = new ResettingTcpProxy(VmSshEndpoint.Of(guest.Vm).Port, resets: int.MaxValue);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm with { SshPort = refusing.Port }, "/tmp/reset-copy.bin", folder, fromGuest: true, recurse: false, SshGuest.User, SshGuest.KeyPath, TimeSpan.FromSeconds(120), null, Ct));
        Assert.Equal("VmCopyFailed", e.ErrorId);
        Assert.Contains($"scp exited 255, {SshHandshakeRetry.Attempts} attempts", e.Message);
        Assert.Equal(SshHandshakeRetry.Attempts, refusing.Accepted);
        Assert.Empty(Directory.GetFileSystemEntries(folder));
    }

    /// <summary>
    /// A FIFO in the guest that nobody opens at the other end: sftp-server blocks opening it, for reading (a copy
    /// out) or for writing (a copy in), so the copy hangs deterministically.
    /// </summary>
    private async Task<string> GuestFifo(string name)
    {
        var fifo = "/tmp/" + name;
        var made = await Run($"rm -f {fifo}; mkfifo {fifo} && test -p {fifo}");
        Assert.True(made.ExitCode == 0, $"mkfifo in the guest: {made.Output}{made.ErrorOutput}");
        return fifo;
    }

    /// <summary>The scp or ssh processes on this host that talk to the test guest's forwarded SSH port.</summary>
    private IReadOnlyList<(string Pid, string[] Argv)> CopyProcesses()
    {
        var port = "Port=" + VmSshEndpoint.Of(guest.Vm).Port;
        var found = new List<(string, string[])>();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (Path.GetFileName(argv[0]) is "scp" or "ssh" && argv.Contains(port)) found.Add((Path.GetFileName(dir), argv));
            }
            catch (IOException)
            {
            }
        }

        return found;
    }

    private async Task AssertNoCopyProcessLeft()
    {
        // Killing is asynchronous: the kernel reaps a killed process a moment later.
        for (var i = 0; i < 20 && CopyProcesses().Count > 0; i++) await Task.Delay(100, Ct);
        Assert.Empty(CopyProcesses().Select(p => string.Join(' ', p.Argv)));
    }

    /// <summary>
    /// Starts copying a 32 MiB guest file to <paramref name="target"/> and freezes this host's scp (SIGSTOP) once
    /// its staged file holds 1 MiB: a copy hung half-way, deterministically, with a partial file on disk. The
    /// returned task is the copy's.
    /// </summary>
    private async Task<Task<VmItemCopy>> StartCopyThatHangsHalfWay(string target, TimeSpan? timeout, CancellationToken ct)
    {
        var made = await Run("test -s /tmp/big.bin || dd if=/dev/zero of=/tmp/big.bin bs=1048576 count=32 2>/dev/null; wc -c < /tmp/big.bin");
        Assert.Equal("33554432", made.Output.Trim());
        var folder = Path.GetDirectoryName(target)!;
        var copy = VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, "/tmp/big.bin", target, fromGuest: true, recurse: false, SshGuest.User, SshGuest.KeyPath, timeout, null, ct);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && !copy.IsCompleted)
        {
            var staged = Directory.GetFiles(folder, ".*.part");
            if (staged.Length == 1 && new FileInfo(staged[0]).Length >= 1 << 20)
            {
                foreach (var pid in CopyProcesses().Where(p => p.Argv.Contains("-s")).Select(p => p.Pid)) Programs.MustRun("kill", "-STOP", pid);
                return copy;
            }

            await Task.Delay(5, Ct);
        }

        Assert.Fail($"the copy never had 1 MiB staged (completed: {copy.IsCompleted})");
        return copy;
    }

    [Fact]
    public async Task CopyFromTheGuest_PastItsTimeout_IsVmCopyTimeout_KillsScp_AndLeavesNoFileAtTheDestination()
    {
        var folder = guest.Bed.Combine("timeout-down");
        Directory.CreateDirectory(folder);
        var target = Path.Combine(folder, "out.bin");
        var clock = Stopwatch.StartNew();
        var copy = await StartCopyThatHangsHalfWay(target, TimeSpan.FromSeconds(4), Ct);
        var e = await Assert.ThrowsAsync<VmToolsException>(() => copy);
        Assert.Equal(("VmCopyTimeout", FailureKind.OperationTimeout), (e.ErrorId, e.Kind));
        Assert.InRange(clock.Elapsed.TotalSeconds, 3.9, 20);
        Assert.Contains("left as it was", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(folder)); // neither the target nor the partial staged file
        await AssertNoCopyProcessLeft();

        // A target that was there stays as it was.
        File.WriteAllText(target, "keep");
        copy = await StartCopyThatHangsHalfWay(target, TimeSpan.FromSeconds(3), Ct);
        Assert.Equal("VmCopyTimeout", (await Assert.ThrowsAsync<VmToolsException>(() => copy)).ErrorId);
        Assert.Equal(new[] { "out.bin" }, Directory.GetFileSystemEntries(folder).Select(Path.GetFileName));
        Assert.Equal("keep", File.ReadAllText(target));
        await AssertNoCopyProcessLeft();
    }

    [Fact]
    public async Task CopyFromTheGuest_Cancelled_KillsScp_AndRemovesTheStagedFile()
    {
        var folder = guest.Bed.Combine("cancel-down");
        Directory.CreateDirectory(folder);
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var copy = await StartCopyThatHangsHalfWay(Path.Combine(folder, "out.bin"), TimeSpan.FromSeconds(120), ctrlC.Token);
        Assert.NotEmpty(Directory.GetFileSystemEntries(folder)); // the partial staged file, until the cancellation
        await ctrlC.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => copy);
        Assert.Empty(Directory.GetFileSystemEntries(folder));
        await AssertNoCopyProcessLeft();
    }

    [Fact]
    public async Task CopyIntoTheGuest_PastItsTimeout_IsVmCopyTimeout_SayingTheGuestFileMayBePartial()
    {
        var fifo = await GuestFifo("never-read");
        var local = guest.Bed.Combine("small.txt");
        await File.WriteAllTextAsync(local, "small\n", Ct);
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<VmToolsException>(() => VmFileCopy.CopyAsync(ProcessRunner.Instance, guest.Vm, local, fifo, fromGuest: false, recurse: false, SshGuest.User, SshGuest.KeyPath, TimeSpan.FromSeconds(3), null, Ct));
        Assert.Equal(("VmCopyTimeout", FailureKind.OperationTimeout), (e.ErrorId, e.Kind));
        Assert.InRange(clock.Elapsed.TotalSeconds, 2.9, 15);
        Assert.Contains("may be partial", e.Message);
        await AssertNoCopyProcessLeft();
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

/// <summary>Every report, in order, on the reporting thread (System.Progress would post them to a context later).</summary>
internal sealed class RecordedProgress : IProgress<TransferProgress>
{
    private readonly List<TransferProgress> _reports = new();

    public IReadOnlyList<TransferProgress> Reports
    {
        get { lock (_reports) return _reports.ToList(); }
    }

    public void Report(TransferProgress value)
    {
        lock (_reports) _reports.Add(value);
    }
}
