using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// Copies files between this host and a guest with OpenSSH's scp in its SFTP mode (<c>-s</c>): the guest's
/// path travels as an SFTP path, never through a remote shell, so no quoting is needed or possible. The
/// connection options are <see cref="VmSsh"/>'s, to the VM's <see cref="VmSshEndpoint"/>.
/// </summary>
public static class VmFileCopy
{
    /// <summary>
    /// Refuses a path that is empty, starts with '-' (almost always a parameter gone astray, and an option to
    /// scp when local), or holds control characters. Throws <c>VmCopyPathInvalid</c>.
    /// </summary>
    public static string ValidatePath(string path, string what)
    {
        if (string.IsNullOrEmpty(path) || path.StartsWith('-') || path.Any(char.IsControl))
        {
            throw new VmToolsException("VmCopyPathInvalid", FailureKind.InvalidArgument,
                $"The {what} '{path}' is not a usable path: it must not be empty, start with '-', or hold control characters.") { Target = path };
        }

        return path;
    }

    /// <summary>
    /// The scp argv. <paramref name="localPath"/> must be absolute: scp reads an operand with a ':' before its
    /// first '/' as host:path. A remote source is matched as a glob by scp's SFTP mode, so its
    /// glob characters are escaped: the path names exactly one item.
    /// </summary>
    public static CommandSpec Command(VmSshEndpoint endpoint, string localPath, string remotePath, bool fromGuest, bool recurse, string user, string? keyPath)
    {
        VmSsh.ValidateUser(user);
        ValidatePath(remotePath, "guest path");
        if (!System.IO.Path.IsPathRooted(localPath)) throw new ArgumentException("The local path must be absolute.", nameof(localPath));
        var args = new List<string> { "-s", "-q" };
        if (recurse) args.Add("-r");
        args.AddRange(VmSsh.ClientOptions(endpoint, keyPath, 10));
        var remote = $"{user}@{endpoint.UriHost}:{(fromGuest ? EscapeGlob(remotePath) : remotePath)}";
        // "--" ends the options: the operands are paths, whatever they look like.
        args.Add("--");
        args.AddRange(fromGuest ? new[] { remote, localPath } : new[] { localPath, remote });
        return new CommandSpec("scp", args);
    }

    /// <summary>
    /// Copies <paramref name="path"/> to <paramref name="destination"/>: host to guest, or guest to host with
    /// <paramref name="fromGuest"/>. The local one of the two must be absolute. Checks what it can before
    /// connecting: <c>VmCopyPathInvalid</c>, <c>VmCopySourceNotFound</c>, <c>VmCopyNeedsRecurse</c>,
    /// <c>VmCopyDestinationNotFound</c>, then <c>VmSshUnavailable</c> or <c>VmNotRunning</c>; scp's own failure
    /// is <c>VmCopyFailed</c> with its message.
    /// </summary>
    public static async Task<VmItemCopy> CopyAsync(ICommandRunner runner, FlightVm vm, string path, string destination, bool fromGuest, bool recurse, string user, string? keyPath, CancellationToken ct)
    {
        var (local, remote) = fromGuest ? (destination, path) : (path, destination);
        ValidatePath(remote, "guest path");
        if (fromGuest)
        {
            var parent = Directory.Exists(local) ? local : System.IO.Path.GetDirectoryName(local);
            if (string.IsNullOrEmpty(parent) || !Directory.Exists(parent))
            {
                throw new VmToolsException("VmCopyDestinationNotFound", FailureKind.NotFound, $"The folder to copy into, '{parent ?? local}', does not exist.") { Target = local };
            }
        }
        else if (Directory.Exists(local))
        {
            if (!recurse) throw new VmToolsException("VmCopyNeedsRecurse", FailureKind.InvalidArgument, $"'{local}' is a folder; copy it with -Recurse.") { Target = local };
        }
        else if (!File.Exists(local))
        {
            throw new VmToolsException("VmCopySourceNotFound", FailureKind.NotFound, $"'{local}' does not exist.") { Target = local };
        }

        var endpoint = VmSsh.RunningEndpoint(vm);
        var r = await runner.RunAsync(Command(endpoint, local, remote, fromGuest, recurse, user, keyPath), ct).ConfigureAwait(false);
        if (r.ExitCode != 0)
        {
            var detail = r.StandardError.Trim();
            throw new VmToolsException("VmCopyFailed", FailureKind.InvalidOperation,
                $"Copying {(fromGuest ? $"'{remote}' from VM '{vm.Name}' to '{local}'" : $"'{local}' to '{remote}' in VM '{vm.Name}'")} failed (scp exited {r.ExitCode}){(detail.Length > 0 ? ": " + detail : ".")}") { Target = vm.Name };
        }

        var arrived = fromGuest && Directory.Exists(local) ? System.IO.Path.Combine(local, System.IO.Path.GetFileName(remote.TrimEnd('/'))) : local;
        return new VmItemCopy(vm.Name, path, destination, fromGuest, LocalLength(arrived));
    }

    private static long LocalLength(string path)
    {
        if (File.Exists(path)) return new FileInfo(path).Length;
        if (!Directory.Exists(path)) return 0;
        return new DirectoryInfo(path).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Sum(f => f.Length);
    }

    /// <summary>A backslash before each of sftp's glob characters (and before a backslash) makes them literal.</summary>
    private static string EscapeGlob(string path)
    {
        var escaped = new System.Text.StringBuilder(path.Length);
        foreach (var c in path)
        {
            if (c is '\\' or '*' or '?' or '[' or ']' or '{' or '}') escaped.Append('\\');
            escaped.Append(c);
        }

        return escaped.ToString();
    }
}
