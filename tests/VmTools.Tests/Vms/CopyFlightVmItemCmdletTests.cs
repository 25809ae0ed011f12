using System.Diagnostics;
using System.Management.Automation;
using System.Security.Cryptography;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>
/// Copy-FlightVmItem in a real PowerShell engine against the SSH test guest: progress records for a copy
/// each way, -Timeout as VmCopyTimeout, and Ctrl+C leaving nothing behind. Twin of VmSshGuestTests (core).
/// </summary>
[Collection("qemu-vms")]
public sealed class CopyFlightVmItemCmdletTests
{
    private static readonly Dictionary<string, object> Key = new() { ["KeyPath"] = SshGuest.KeyPath, ["User"] = SshGuest.User };

    private static void StartSshGuest(VmSession s, string name)
    {
        var p = new Dictionary<string, object>
        {
            ["ImagePath"] = s.BaseImage, ["Name"] = name, ["Kernel"] = SshGuest.Kernel, ["Initrd"] = SshGuest.Initrd, ["KernelArgs"] = SshGuest.KernelArgs,
            ["MemoryMB"] = 256, ["Network"] = "User",
        };
        s.Ps.Invoke("param($p, $m) $null = Start-FlightVm @p -Wait -ReadyPattern $m -Timeout 300", p, SshGuest.ReadyMarker);
    }

    /// <summary>The scp and ssh processes of this host that carry <paramref name="port"/> in their argv.</summary>
    private static List<string> CopyProcesses(string port)
    {
        var found = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (Path.GetFileName(argv[0]) is "scp" or "ssh" && argv.Contains(port)) found.Add(string.Join(' ', argv));
            }
            catch (IOException)
            {
            }
        }

        return found;
    }

    private static void AssertNoCopyProcessLeft(string port)
    {
        for (var i = 0; i < 20 && CopyProcesses(port).Count > 0; i++) Thread.Sleep(100);
        Assert.Empty(CopyProcesses(port));
    }

    [Fact]
    public void Copy_WritesProgressEachWay_TimeoutIsVmCopyTimeout_AndCtrlCLeavesNoFile()
    {
        using var s = new VmSession();
        StartSshGuest(s, "cp");
        var port = "Port=" + s.Ps.Invoke("(Get-FlightVm cp).SshPort").Single();

        // A few MB each way, byte-identical, with progress records naming the file and the VM.
        var sent = Path.Combine(s.Home, "payload.bin");
        var data = RandomNumberGenerator.GetBytes(4 * 1024 * 1024 + 7);
        File.WriteAllBytes(sent, data);
        var up = s.Ps.Run("param($src, $k) Copy-FlightVmItem cp $src /tmp/payload.bin @k -Timeout 120", sent, Key);
        Assert.False(up.HadErrors, up.AllText);
        Assert.NotEmpty(up.Progress);
        Assert.All(up.Progress, p => Assert.Equal("Copying 'payload.bin' to VM 'cp'", p.Activity));
        Assert.Contains(up.Progress, p => p.StatusDescription.Contains("of 4.0 MiB", StringComparison.Ordinal));
        Assert.Equal(ProgressRecordType.Completed, up.Progress[^1].RecordType);

        var back = Path.Combine(s.Home, "back");
        Directory.CreateDirectory(back);
        var down = s.Ps.Run("param($dst, $k) Copy-FlightVmItem cp /tmp/payload.bin $dst -FromGuest @k -Timeout 120", back, Key);
        Assert.False(down.HadErrors, down.AllText);
        Assert.NotEmpty(down.Progress);
        Assert.All(down.Progress, p => Assert.Equal("Copying '/tmp/payload.bin' from VM 'cp'", p.Activity));
        Assert.Equal(ProgressRecordType.Completed, down.Progress[^1].RecordType);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(File.ReadAllBytes(Path.Combine(back, "payload.bin"))));
        Assert.Equal(new[] { "payload.bin" }, Directory.GetFileSystemEntries(back).Select(Path.GetFileName));

        // Into a guest FIFO nobody reads: sftp-server blocks opening it, and the copy hangs until -Timeout.
        s.Ps.Invoke("param($k) $null = Invoke-FlightVmCommand cp 'rm -f /tmp/fifo; mkfifo /tmp/fifo' @k", Key);
        var clock = Stopwatch.StartNew();
        var timedOut = s.Ps.ExpectError("param($src, $k) Copy-FlightVmItem cp $src /tmp/fifo @k -Timeout 3", sent, Key);
        Assert.Equal("VmCopyTimeout,VmTools.Commands.CopyFlightVmItemCommand", timedOut.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.OperationTimeout, timedOut.CategoryInfo.Category);
        Assert.Contains("may be partial", timedOut.Exception.Message);
        Assert.InRange(clock.Elapsed.TotalSeconds, 2.9, 20);
        AssertNoCopyProcessLeft(port);

        // Ctrl+C during a copy out of the guest: scp killed, the staged file removed, the folder as it was.
        s.Ps.Invoke("param($k) $null = Invoke-FlightVmCommand cp 'dd if=/dev/zero of=/tmp/big.bin bs=1048576 count=32 2>/dev/null' @k", Key);
        var stopAt = Path.Combine(s.Home, "stopped");
        Directory.CreateDirectory(stopAt);
        var (stopped, progress) = s.Ps.RunAndStop("param($dst, $k) Copy-FlightVmItem cp /tmp/big.bin $dst -FromGuest @k", p => p.RecordType == ProgressRecordType.Processing, stopAt, Key);
        Assert.True(stopped, string.Join('\n', progress.Select(p => p.StatusDescription)));
        Assert.Empty(Directory.GetFileSystemEntries(stopAt));
        AssertNoCopyProcessLeft(port);
    }
}
