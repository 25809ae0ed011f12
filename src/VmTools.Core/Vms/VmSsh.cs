using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// Runs a command in the guest through the OpenSSH client over the forwarded port. Host keys of
/// disposable VMs change with every boot, so they are neither checked nor remembered; BatchMode keeps
/// ssh from ever prompting.
/// </summary>
public static class VmSsh
{
    public static CommandSpec Command(FlightVm vm, string command, string user, string? keyPath, int connectTimeoutSeconds)
    {
        ValidateUser(user);
        if (VmSshEndpoint.Of(vm) is not { } endpoint)
        {
            throw new VmToolsException("VmSshUnavailable", FailureKind.InvalidOperation, $"VM '{vm.Name}' has no SSH endpoint (network {vm.Network}): Invoke-FlightVmCommand needs -Network User, or -Network Tap on a bridge VmTools created.") { Target = vm.Name };
        }

        var args = new List<string>
        {
            "-p", endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=" + connectTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-o", "LogLevel=ERROR",
        };
        if (keyPath is not null) args.AddRange(new[] { "-i", keyPath, "-o", "IdentitiesOnly=yes" });
        // "--" before the destination: nothing after it is read as an ssh option.
        args.AddRange(new[] { "--", user + "@" + endpoint.Host, command });
        return new CommandSpec("ssh", args);
    }

    /// <summary>
    /// Refuses a user ssh could read as something else: "-oProxyCommand=…" is an option (a command run on the
    /// host), '@' or whitespace would change the destination. Throws <c>VmSshUserInvalid</c>.
    /// </summary>
    public static string ValidateUser(string user)
    {
        if (string.IsNullOrEmpty(user) || user.StartsWith('-') || user.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '@'))
        {
            throw new VmToolsException("VmSshUserInvalid", FailureKind.InvalidArgument,
                "The SSH user must be a plain user name: not empty, not starting with '-', without whitespace or '@'.") { Target = user };
        }

        return user;
    }

    public static async Task<VmCommandResult> RunAsync(ICommandRunner runner, FlightVm vm, string command, string user, string? keyPath, CancellationToken ct)
    {
        var r = await runner.RunAsync(Command(vm, command, user, keyPath, 10), ct).ConfigureAwait(false);
        // ssh reserves 255 for its own failures; every other code is the remote command's.
        if (r.ExitCode == 255)
        {
            throw new VmToolsException("VmSshFailed", FailureKind.ConnectionFailed, $"SSH to VM '{vm.Name}' ({VmSshEndpoint.Of(vm)}) failed: {r.StandardError.Trim()}") { Target = vm.Name };
        }

        return new VmCommandResult(vm.Name, command, r.ExitCode, r.StandardOutput, r.StandardError);
    }
}
