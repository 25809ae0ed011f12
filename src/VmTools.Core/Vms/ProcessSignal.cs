using System.Runtime.InteropServices;

namespace VmTools.Core.Vms;

/// <summary>
/// Signals a process only if it is still the one we identified. A pidfd pins the process first; the
/// start time is re-checked through it, so a PID recycled between the check and the signal is never hit.
/// </summary>
public static class ProcessSignal
{
    public const int SigHup = 1;
    public const int SigKill = 9;
    public const int SigTerm = 15;
    private const long SysPidfdOpen = 434;
    private const long SysPidfdSendSignal = 424;

    /// <summary>True when the signal was delivered; false when the process is gone or is not <paramref name="target"/> any more.</summary>
    public static bool Send(ProcessEntry target, int signal)
    {
        var fd = (int)Syscall(SysPidfdOpen, target.Pid, 0, 0, 0);
        if (fd < 0) return false;
        try
        {
            var now = ProcessTable.Read("/proc", target.Pid);
            if (now is null || now.StartTime != target.StartTime) return false;
            return Syscall(SysPidfdSendSignal, fd, signal, 0, 0) == 0;
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Polls until <paramref name="target"/> is gone (or a zombie); false on timeout.</summary>
    public static async Task<bool> WaitForExitAsync(ProcessEntry target, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var now = ProcessTable.Read("/proc", target.Pid);
            if (now is null || now.StartTime != target.StartTime) return true;
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, long a1, long a2, long a3, long a4);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
}
