using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using System.Runtime.InteropServices;

namespace VmTools.Core.Host;

/// <summary>
/// Moves bytes from one process's stdout pipe into another's stdin pipe (or into a file) with Linux
/// splice(2): the kernel passes page references along, so nothing is copied through this process. A
/// .NET stream copy of a 1 GiB zfs send took 3.8 s where the shell's one pipe took 2.5 s (bench/Volumes):
/// every 64 KiB read and write was a thread-pool hop on a 2-core machine that zfs-fuse already keeps busy.
/// Both ends are used without blocking (SPLICE_F_NONBLOCK plus poll with a short timeout), so
/// cancellation is noticed within <see cref="PollMilliseconds"/> even when a peer stops moving.
/// </summary>
public static class PipeSplice
{
    /// <summary>As much as one call moves; pipes are enlarged to this when the kernel allows.</summary>
    public const int ChunkBytes = 1 << 20;

    private const int PollMilliseconds = 200;
    private const uint SpliceMove = 1, SpliceNonBlock = 2, SpliceMore = 4;
    private const int FSetPipeSize = 1031;
    /// <summary>The <see cref="IOException.HResult"/> of a copy whose reader went away (EPIPE).</summary>
    public const int BrokenPipe = EPipe;

    private const int EIntr = 4, EAgain = 11, EPipe = 32;
    private const short PollIn = 0x1, PollOut = 0x4, PollErr = 0x8, PollHup = 0x10;

    /// <summary>True on Linux when the source is an OS pipe and the destination a pipe or a file.</summary>
    public static bool CanSplice(Stream source, Stream destination)
        => OperatingSystem.IsLinux() && source is PipeStream { CanRead: true } && destination is PipeStream { CanWrite: true } or FileStream { CanWrite: true };

    /// <summary>
    /// Copies until the source's writers are gone; reports the running total after each move.
    /// A destination whose reader went away throws <see cref="IOException"/> with HResult
    /// <see cref="BrokenPipe"/>; any other failure (a full disk) an IOException naming the errno.
    /// </summary>
    public static async Task<long> CopyAsync(Stream source, Stream destination, Action<long> report, CancellationToken cancellationToken)
    {
        if (!CanSplice(source, destination)) throw new ArgumentException("splice needs a pipe to read and a pipe or file to write.");
        var input = ((PipeStream)source).SafePipeHandle;
        if (destination is not FileStream file)
        {
            var output = ((PipeStream)destination).SafePipeHandle;
            return await Task.Factory.StartNew(() => Copy(input, output, null, report, cancellationToken), cancellationToken,
                TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
        }

        // The FileStream flushes its buffer when it hands out the handle and keeps its own position,
        // writing at it with pwrite: splice writes at that position too, and the stream is told how far
        // the file got, so its later writes follow the spliced bytes instead of overwriting them.
        var handle = file.SafeFileHandle;
        var start = file.Position;
        long moved = 0;
        try
        {
            return await Task.Factory.StartNew(() => Copy(input, handle, start, n => report(moved = n), cancellationToken), cancellationToken,
                TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
        }
        finally
        {
            file.Position = start + moved;
        }
    }

    private static long Copy(SafePipeHandle input, SafeHandle output, long? fileOffset, Action<long> report, CancellationToken cancellationToken)
    {
        bool inRef = false, outRef = false;
        try
        {
            input.DangerousAddRef(ref inRef);
            output.DangerousAddRef(ref outRef);
            var fdIn = (int)input.DangerousGetHandle();
            var fdOut = (int)output.DangerousGetHandle();
            // Larger pipes mean fewer wake-ups; refused sizes (pipe-max-size) just keep the default.
            _ = fcntl(fdIn, FSetPipeSize, ChunkBytes);
            if (fileOffset is null) _ = fcntl(fdOut, FSetPipeSize, ChunkBytes);

            var offset = fileOffset ?? 0;
            long total = 0;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var n = fileOffset is null
                    ? splice(fdIn, IntPtr.Zero, fdOut, IntPtr.Zero, ChunkBytes, SpliceMove | SpliceNonBlock | SpliceMore)
                    : splice(fdIn, IntPtr.Zero, fdOut, ref offset, ChunkBytes, SpliceMove | SpliceNonBlock | SpliceMore);
                if (n > 0)
                {
                    total += n;
                    report(total);
                    continue;
                }

                if (n == 0) return total;
                var errno = Marshal.GetLastPInvokeError();
                switch (errno)
                {
                    case EIntr:
                        continue;
                    case EAgain:
                        WaitUntilMovable(fdIn, fdOut, cancellationToken);
                        continue;
                    case EPipe:
                        throw new IOException("The receiving process closed its input.", BrokenPipe);
                    default:
                        throw new IOException($"splice: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).", errno);
                }
            }
        }
        finally
        {
            if (inRef) input.DangerousRelease();
            if (outRef) output.DangerousRelease();
        }
    }

    /// <summary>Waits until the source has data (or hung up) and the destination has room (or failed).</summary>
    private static void WaitUntilMovable(int fdIn, int fdOut, CancellationToken cancellationToken)
    {
        var fds = new PollFd[2];
        bool readable = false, writable = false;
        while (!(readable && writable))
        {
            cancellationToken.ThrowIfCancellationRequested();
            fds[0] = new PollFd { Fd = readable ? -1 : fdIn, Events = PollIn };
            fds[1] = new PollFd { Fd = writable ? -1 : fdOut, Events = PollOut };
            var r = poll(fds, 2, PollMilliseconds);
            if (r < 0 && Marshal.GetLastPInvokeError() != EIntr) throw new IOException($"poll failed with errno {Marshal.GetLastPInvokeError()}.");
            if (r <= 0) continue;
            readable |= (fds[0].Revents & (PollIn | PollHup | PollErr)) != 0;
            writable |= (fds[1].Revents & (PollOut | PollErr | PollHup)) != 0;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint splice(int fdIn, IntPtr offIn, int fdOut, IntPtr offOut, nuint len, uint flags);

    [DllImport("libc", SetLastError = true)]
    private static extern nint splice(int fdIn, IntPtr offIn, int fdOut, ref long offOut, nuint len, uint flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    [DllImport("libc", SetLastError = true)]
    private static extern int poll([In, Out] PollFd[] fds, ulong nfds, int timeout);
}
