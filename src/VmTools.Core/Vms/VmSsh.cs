using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// Runs a command in the guest through the OpenSSH client at the VM's <see cref="VmSshEndpoint"/>. Host keys
/// of disposable VMs change with every boot, so they are neither checked nor remembered; BatchMode keeps
/// ssh from ever prompting.
/// </summary>
public static class VmSsh
{
    /// <summary>
    /// The ssh argv. With <paramref name="terminal"/> ssh asks for a pseudo-terminal (-tt): when the connection
    /// drops, sshd closes it and the kernel hangs up the command's session, so the command dies with it.
    /// </summary>
    public static CommandSpec Command(FlightVm vm, string command, string user, string? keyPath, int connectTimeoutSeconds, bool terminal = false)
    {
        ValidateUser(user);
        var endpoint = VmSshEndpoint.Of(vm);
        var args = ClientOptions(endpoint, keyPath, connectTimeoutSeconds);
        if (terminal) args.Add("-tt");
        // "--" before the destination: nothing after it is read as an ssh option.
        args.AddRange(new[] { "--", user + "@" + endpoint.Host, command });
        return new CommandSpec("ssh", args);
    }

    /// <summary>The options ssh and scp share: where to connect, never prompt, never remember the host key, which key.</summary>
    internal static List<string> ClientOptions(VmSshEndpoint endpoint, string? keyPath, int connectTimeoutSeconds)
    {
        var args = new List<string>
        {
            "-o", "Port=" + endpoint.Port.ToString(CultureInfo.InvariantCulture),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=" + connectTimeoutSeconds.ToString(CultureInfo.InvariantCulture), "-o", "LogLevel=ERROR",
        };
        if (keyPath is not null) args.AddRange(new[] { "-i", keyPath, "-o", "IdentitiesOnly=yes" });
        return args;
    }

    /// <summary>
    /// Refuses a user ssh could read as something else: "-oProxyCommand=…" is an option (a command run on the
    /// host), '@' or whitespace would change the destination. Throws <c>VmSshUserInvalid</c>.
    /// </summary>
    public static string ValidateUser(string user)
    {
        if (string.IsNullOrEmpty(user) || user.StartsWith('-') || user.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '@' || c == ':'))
        {
            throw new VmToolsException("VmSshUserInvalid", FailureKind.InvalidArgument,
                "The SSH user must be a plain user name: not empty, not starting with '-', without whitespace, '@' or ':'.") { Target = user };
        }

        return user;
    }

    /// <summary>
    /// The VM's endpoint when its qemu runs (by the liveness rule); else <c>VmNotRunning</c>, since a stopped
    /// VM's forwarded port answers nothing, or another VM's.
    /// </summary>
    public static VmSshEndpoint RunningEndpoint(FlightVm vm)
    {
        var endpoint = VmSshEndpoint.Of(vm);
        if (!HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current).Alive)
        {
            throw new VmToolsException("VmNotRunning", FailureKind.InvalidOperation, $"VM '{vm.Name}' has no running qemu (state {vm.State}); there is no guest to reach over SSH.") { Target = vm.Name };
        }

        return endpoint;
    }

    /// <summary>
    /// Runs <paramref name="command"/>. With a <paramref name="timeout"/> the command runs on a pseudo-terminal
    /// (see <see cref="Command"/>) so that it dies in the guest when the time is up and ssh is killed here; a
    /// terminal has one output stream, so then Output holds stdout and stderr together ("\r\n" read as "\n")
    /// and ErrorOutput is empty. Expiry throws <c>VmCommandTimeout</c>. A connection that failed before the
    /// SSH session began is tried again (<see cref="SshHandshakeRetry"/>), within the same timeout.
    /// </summary>
    public static async Task<VmCommandResult> RunAsync(ICommandRunner runner, FlightVm vm, string command, string user, string? keyPath, TimeSpan? timeout, CancellationToken ct)
    {
        var endpoint = RunningEndpoint(vm);
        var terminal = timeout is not null;
        using var expiry = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (timeout is { } limit) expiry.CancelAfter(limit);
        CommandResult r;
        int attempts;
        try
        {
            (r, attempts) = await SshHandshakeRetry.RunAsync(runner, Command(vm, command, user, keyPath, 10, terminal), expiry.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new VmToolsException("VmCommandTimeout", FailureKind.OperationTimeout,
                $"The command did not finish within {timeout!.Value.TotalSeconds:0.###} s in VM '{vm.Name}': ssh was stopped, and the guest hung up the command's terminal.", e) { Target = vm.Name };
        }

        // ssh reserves 255 for its own failures; every other code is the remote command's.
        if (r.ExitCode == 255)
        {
            var tries = attempts > 1 ? $" ({attempts} attempts)" : "";
            throw new VmToolsException("VmSshFailed", FailureKind.ConnectionFailed, $"SSH to VM '{vm.Name}' ({endpoint}) failed{tries}: {r.StandardError.Trim()}") { Target = vm.Name };
        }

        var output = terminal ? r.StandardOutput.Replace("\r\n", "\n", StringComparison.Ordinal) : r.StandardOutput;
        return new VmCommandResult(vm.Name, command, r.ExitCode, output, r.StandardError);
    }
}
