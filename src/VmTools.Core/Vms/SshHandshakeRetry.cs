using System.Text.RegularExpressions;
using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// Runs ssh or scp again when the connection failed before any session existed: the TCP connection was
/// refused or reset, or the server hung up or reset it during the identification exchange, the first
/// bytes of SSH. Nothing ran in the guest and nothing was copied then, so another attempt cannot repeat
/// work. A guest busy under TCG does this now and then (qemu's user network answers a connection the guest
/// dropped with a reset), and a CI step should not fail for it. Every other failure (authentication, the
/// command's own exit code, a transfer cut off) is returned at once.
/// </summary>
public static partial class SshHandshakeRetry
{
    /// <summary>How many times a handshake failure is tried in all; the delays between tries grow.</summary>
    public const int Attempts = 3;

    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Runs <paramref name="command"/> up to <see cref="Attempts"/> times while <see cref="FailedBeforeSession"/>
    /// holds; returns the last result and how many attempts it took. The caller's token bounds all of them.
    /// </summary>
    public static async Task<(CommandResult Result, int Attempts)> RunAsync(ICommandRunner runner, CommandSpec command, CancellationToken ct)
    {
        var delay = FirstDelay;
        for (var attempt = 1; ; attempt++)
        {
            var r = await runner.RunAsync(command, ct).ConfigureAwait(false);
            if (attempt == Attempts || !FailedBeforeSession(r)) return (r, attempt);
            await Task.Delay(delay, ct).ConfigureAwait(false);
            delay *= 2;
        }
    }

    /// <summary>
    /// True when ssh or scp exited 255 (both use it for ssh's own failures) and OpenSSH's message says the
    /// connection ended before the identification exchange completed (the message starting a line of
    /// stderr). A remote command that printed those words and exited 255 would be run again: only the guest
    /// itself can arrange that, and it gains nothing it could not do alone.
    /// </summary>
    public static bool FailedBeforeSession(CommandResult r)
        => r.ExitCode == 255 && HandshakeFailure().IsMatch(r.StandardError);

    // "kex_exchange_identification: read: Connection reset by peer", "kex_exchange_identification: Connection
    // closed by remote host", "ssh: connect to host 10.0.0.5 port 22: Connection refused", and on loopback,
    // where the reset can beat ssh's check of its non-blocking connect, "...: Connection reset by peer". A
    // connect that timed out is not tried again: it already took the whole ConnectTimeout. Nor is a reset that
    // hit ssh's own first write: at LogLevel=ERROR ssh then exits 255 without a word, exactly like a remote
    // "exit 255" that printed nothing, which must not run twice. (qemu's user network takes that write before
    // the guest's reset arrives, so there ssh's read fails, and says so.)
    [GeneratedRegex(@"^(kex_exchange_identification: |ssh: connect to host \S+ port \d+: Connection (refused|reset by peer))", RegexOptions.Multiline)]
    private static partial Regex HandshakeFailure();
}
