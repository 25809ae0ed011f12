using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Volumes.Replication;

/// <summary>
/// Runs one command on a replica host through the OpenSSH client: argv only, BatchMode (never a
/// prompt), "--" before the destination. ssh reserves exit code 255 for its own failures; those are
/// told apart by its stderr into refused/unreachable, host key unknown or changed, and authentication
/// failed. Messages are written here rather than passed through: ssh's own text names key
/// fingerprints and file lines, and neither keys nor credentials belong in VmTools' output.
/// </summary>
public sealed class SshTransport
{
    public const int SshFailureExitCode = 255;

    public SshTransport(ReplicaDestination destination, SshOptions options)
    {
        Destination = destination;
        Options = options;
        if (options.IdentityFile is { } key && !File.Exists(key))
        {
            throw new VmToolsException("VolumeSshIdentityFileNotFound", FailureKind.ResourceUnavailable, $"The identity file '{key}' does not exist.") { Target = key };
        }
    }

    public ReplicaDestination Destination { get; }

    public SshOptions Options { get; }

    /// <summary>The ssh invocation running <paramref name="remoteCommand"/> (a string the remote shell parses; quote names with <see cref="ZfsName.Quote"/>).</summary>
    public CommandSpec Command(string remoteCommand)
    {
        var args = new List<string>
        {
            "-p", Destination.Port.ToString(CultureInfo.InvariantCulture),
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=" + Options.ConnectTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            // A dead peer ends the transfer instead of hanging it.
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
            "-o", "LogLevel=ERROR",
            // The stream is zfs data, often already compressed; ssh's compression would only cost CPU.
            "-o", "Compression=no",
            "-o", "ClearAllForwardings=yes",
        };
        if (Options.SkipHostKeyCheck)
        {
            args.AddRange(new[] { "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null" });
        }
        else
        {
            args.AddRange(new[] { "-o", "StrictHostKeyChecking=yes" });
            if (Options.KnownHostsFile is { } known) args.AddRange(new[] { "-o", "UserKnownHostsFile=" + QuoteOption(Path.GetFullPath(known)), "-o", "GlobalKnownHostsFile=/dev/null" });
        }

        if (Options.IdentityFile is { } identity) args.AddRange(new[] { "-i", Path.GetFullPath(identity), "-o", "IdentitiesOnly=yes" });
        args.AddRange(new[] { "--", Destination.SshTarget, remoteCommand });
        return new CommandSpec("ssh", args);
    }

    /// <summary>Runs a remote command whose output is small text; ssh's own failures are thrown, the remote command's exit code is returned.</summary>
    public async Task<CommandResult> RunAsync(ICommandRunner runner, string remoteCommand, CancellationToken cancellationToken)
    {
        var r = await runner.RunAsync(Command(remoteCommand), cancellationToken).ConfigureAwait(false);
        ThrowIfSshFailed(r);
        return r;
    }

    /// <summary>Throws the specific ssh failure when ssh itself failed (exit 255); otherwise returns.</summary>
    public void ThrowIfSshFailed(CommandResult r)
    {
        if (r.ExitCode != SshFailureExitCode) return;
        var err = r.StandardError;
        var where = $"{Destination.KnownHostsName}";
        var known = Options.KnownHostsFile ?? "~/.ssh/known_hosts";
        var (id, kind, message) = err switch
        {
            _ when Has(err, "REMOTE HOST IDENTIFICATION HAS CHANGED") || Has(err, "Host key for") && Has(err, "has changed")
                => ("VolumeSshHostKeyMismatch", FailureKind.SecurityError,
                    $"The host key {where} presented does not match the one recorded in {known}: the host was reinstalled, or something is impersonating it. Nothing was sent. If the change is expected, remove the old entry (ssh-keygen -R '{Destination.KnownHostsName}') and add the new key after checking it."),
            _ when Has(err, "Host key verification failed") || Has(err, "No ") && Has(err, "host key is known")
                => ("VolumeSshHostKeyUnknown", FailureKind.SecurityError,
                    $"{where} is not in {known}, and host keys are checked: add its key (ssh-keyscan, checked out of band) or pass -KnownHostsFile. Nothing was sent."),
            _ when Has(err, "Permission denied") || Has(err, "Too many authentication failures") || Has(err, "no more authentication methods")
                => ("VolumeSshAuthFailed", FailureKind.AuthenticationFailed,
                    $"{where} refused the login as '{Destination.User ?? "(default user)"}': the key was not accepted (-IdentityFile, the remote authorized_keys)."),
            _ when Has(err, "Connection refused") || Has(err, "Connection timed out") || Has(err, "No route to host") || Has(err, "Network is unreachable")
                || Has(err, "Could not resolve hostname") || Has(err, "Connection reset") || Has(err, "Connection closed") || Has(err, "closed by remote host") || Has(err, "Broken pipe")
                || Has(err, "client_loop") || Has(err, "kex_exchange_identification")
                || Has(err, "timed out")
                => ("VolumeSshConnectionFailed", FailureKind.ConnectionFailed, $"Could not connect to {where}: {Scrub(err)}"),
            _ => ("VolumeSshFailed", FailureKind.ConnectionFailed, $"ssh to {where} failed: {Scrub(err)}"),
        };
        throw new VmToolsException(id, kind, message) { Target = Destination.ToString() };
    }

    private static bool Has(string text, string part) => text.Contains(part, StringComparison.OrdinalIgnoreCase);

    /// <summary>ssh's stderr without any line that carries key material or a fingerprint.</summary>
    internal static string Scrub(string stderr)
        => string.Join(" ", stderr.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.Contains("SHA256:", StringComparison.Ordinal) && !l.Contains("MD5:", StringComparison.Ordinal)
                        && !l.Contains("ssh-", StringComparison.Ordinal) && !l.Contains("ecdsa-", StringComparison.Ordinal)
                        && !l.Contains("PRIVATE KEY", StringComparison.Ordinal) && !l.StartsWith('@')));

    /// <summary>ssh splits option values on whitespace; a path with spaces goes in double quotes.</summary>
    private static string QuoteOption(string value) => value.Any(char.IsWhiteSpace) ? "\"" + value + "\"" : value;
}
