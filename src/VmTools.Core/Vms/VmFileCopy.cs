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
        // No -q: it would silence ssh's own errors too, leaving "scp: Connection closed" without the reason (and
        // SshHandshakeRetry without the words it reads). scp draws no progress meter when stdout is no terminal.
        var args = new List<string> { "-s" };
        if (recurse) args.Add("-r");
        args.AddRange(VmSsh.ClientOptions(endpoint, keyPath, 10));
        var remote = $"{user}@{endpoint.UriHost}:{(fromGuest ? EscapeGlob(remotePath) : remotePath)}";
        // "--" ends the options: the operands are paths, whatever they look like.
        args.Add("--");
        args.AddRange(fromGuest ? new[] { remote, localPath } : new[] { localPath, remote });
        return new CommandSpec("scp", args);
    }

    /// <summary>How often a running copy reports its bytes: CoreContext draws at most a few records a second anyway.</summary>
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Copies <paramref name="path"/> to <paramref name="destination"/>: host to guest, or guest to host with
    /// <paramref name="fromGuest"/>. The local one of the two must be absolute. Checks what it can before
    /// connecting: <c>VmCopyPathInvalid</c>, <c>VmCopySourceNotFound</c>, <c>VmCopyNeedsRecurse</c>,
    /// <c>VmCopyDestinationNotFound</c>, then <c>VmSshUnavailable</c> or <c>VmNotRunning</c>; scp's own failure
    /// is <c>VmCopyFailed</c> with its message, and a copy still running after <paramref name="timeout"/> is
    /// <c>VmCopyTimeout</c> (scp and its ssh killed). A connection that failed before the SSH session began is
    /// tried again (<see cref="SshHandshakeRetry"/>): nothing was copied yet.
    /// </summary>
    /// <remarks>
    /// From the guest, scp writes to a fresh name beside the target (<see cref="VmCopyStaging"/>) that is renamed
    /// over it only after scp succeeded: a failed, timed-out or stopped copy leaves the target as it was. Into the
    /// guest there is no such step (it would take a remote shell and a second connection), so the guest's file
    /// may be partial after a failure; the error says so. Progress: bytes of the local file sent (its size, known
    /// up front), or of the staged file as it grows.
    /// </remarks>
    public static async Task<VmItemCopy> CopyAsync(ICommandRunner runner, FlightVm vm, string path, string destination, bool fromGuest, bool recurse, string user, string? keyPath,
        TimeSpan? timeout, IProgress<TransferProgress>? progress, CancellationToken ct)
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
        var what = fromGuest ? $"'{remote}' from VM '{vm.Name}' to '{local}'" : $"'{local}' to '{remote}' in VM '{vm.Name}'";
        var arrived = fromGuest && Directory.Exists(local) ? System.IO.Path.Combine(local, System.IO.Path.GetFileName(remote.TrimEnd('/'))) : local;
        // A folder copied into a folder that already exists merges into it: there is nothing to rename over it.
        var staging = fromGuest && !(recurse && Directory.Exists(arrived)) ? VmCopyStaging.Beside(arrived) : null;
        var activity = fromGuest ? $"Copying '{remote}' from VM '{vm.Name}'" : $"Copying '{System.IO.Path.GetFileName(local.TrimEnd('/'))}' to VM '{vm.Name}'";
        var item = fromGuest ? arrived : remote;
        // An empty source has no total worth showing: 0 of 0 would read as finished before scp starts.
        long? total = fromGuest ? null : LocalLength(local) is var size && size > 0 ? size : null;
        var clock = System.Diagnostics.Stopwatch.StartNew();

        using var expiry = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (timeout is { } limit) expiry.CancelAfter(limit);
        using var reporting = CancellationTokenSource.CreateLinkedTokenSource(expiry.Token);
        var reporter = progress is null ? Task.CompletedTask
            : ReportWhileRunningAsync(() => fromGuest ? LocalLength(staging?.Path ?? arrived) : 0, activity, item, total, clock, progress, reporting.Token);
        try
        {
            CommandResult r;
            int attempts;
            try
            {
                (r, attempts) = await SshHandshakeRetry.RunAsync(runner, Command(endpoint, staging?.Path ?? local, remote, fromGuest, recurse, user, keyPath), expiry.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested && timeout is not null)
            {
                throw new VmToolsException("VmCopyTimeout", FailureKind.OperationTimeout,
                    $"Copying {what} did not finish within {timeout.Value.TotalSeconds:0.###} s: scp was stopped. "
                    + (fromGuest ? (staging is null ? $"'{arrived}' may hold part of the folder." : $"'{arrived}' was left as it was.") : $"The guest's '{remote}' may be partial."), e) { Target = vm.Name };
            }

            if (r.ExitCode != 0)
            {
                var detail = r.StandardError.Trim();
                throw new VmToolsException("VmCopyFailed", FailureKind.InvalidOperation,
                    $"Copying {what} failed (scp exited {r.ExitCode}{(attempts > 1 ? $", {attempts} attempts" : "")}){(detail.Length > 0 ? ": " + detail : ".")}") { Target = vm.Name };
            }

            staging?.Commit();
        }
        finally
        {
            await reporting.CancelAsync().ConfigureAwait(false);
            await reporter.ConfigureAwait(false);
            staging?.Dispose();
        }

        var length = LocalLength(fromGuest ? arrived : local);
        progress?.Report(new TransferProgress(activity, item, Math.Max(length, 1), Math.Max(length, 1), clock.Elapsed));
        return new VmItemCopy(vm.Name, path, destination, fromGuest, length);
    }

    /// <summary>Reports <paramref name="bytesDone"/> every <see cref="ProgressInterval"/> until cancelled; never throws.</summary>
    private static async Task ReportWhileRunningAsync(Func<long> bytesDone, string activity, string item, long? total, System.Diagnostics.Stopwatch clock, IProgress<TransferProgress> progress, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                long done;
                // The staged file or folder changes under scp; a file vanishing between listing and stat is normal.
                try { done = bytesDone(); } catch (IOException) { done = 0; } catch (UnauthorizedAccessException) { done = 0; }
                progress.Report(new TransferProgress(activity, item, done, total, clock.Elapsed));
                await Task.Delay(ProgressInterval, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
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
