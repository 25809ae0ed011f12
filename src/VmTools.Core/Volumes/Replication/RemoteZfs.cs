using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Volumes.Replication;

/// <summary>
/// The zfs commands a replica host runs, over <see cref="SshTransport"/>. The remote side needs zfs
/// and sshd only: every command is a plain zfs invocation with quoted, grammar-checked names, and
/// uses only what zfs-fuse 0.7 has too (<c>zfs get -H -p</c>, not <c>zfs list -p</c>).
/// </summary>
public sealed class RemoteZfs
{
    private readonly ICommandRunner _runner;

    public RemoteZfs(SshTransport ssh, ICommandRunner runner)
    {
        Ssh = ssh;
        _runner = runner;
    }

    public SshTransport Ssh { get; }

    public string Dataset => Ssh.Destination.Dataset;

    /// <summary>The replica's snapshots oldest first, or null when the dataset does not exist yet.</summary>
    public async Task<IReadOnlyList<ZfsSnapshot>?> ListSnapshotsAsync(CancellationToken cancellationToken)
    {
        var r = await Ssh.RunAsync(_runner, $"zfs get -H -p -r -o name,property,value type,guid,createtxg {ZfsName.Quote(Dataset)}", cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            if (r.StandardError.Contains("does not exist", StringComparison.Ordinal)) return null;
            throw Failed("VolumeReplicaListFailed", "list the snapshots of", r);
        }

        var props = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var line in r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.TrimEnd('\r').Split('\t');
            if (parts.Length < 3) continue;
            if (!props.TryGetValue(parts[0], out var p)) props[parts[0]] = p = new Dictionary<string, string>(StringComparer.Ordinal);
            p[parts[1]] = parts[2];
        }

        if (!props.ContainsKey(Dataset)) return null;
        return props
            .Where(p => p.Key.StartsWith(Dataset + "@", StringComparison.Ordinal) && p.Value.ContainsKey("guid") && p.Value.ContainsKey("createtxg"))
            .Select(p => new ZfsSnapshot(p.Key, ulong.Parse(p.Value["guid"], CultureInfo.InvariantCulture), long.Parse(p.Value["createtxg"], CultureInfo.InvariantCulture), 0))
            .OrderBy(s => s.CreateTxg)
            .ToList();
    }

    /// <summary>
    /// Runs <c>zfs receive -u</c> (never mounted on the replica host: nothing there touches it, so the
    /// next incremental applies) fed by <paramref name="produce"/>. zfs receive is atomic per snapshot: a
    /// stream cut short leaves the replica at its last complete snapshot. <paramref name="force"/> adds
    /// -F, which rolls the replica back and destroys its snapshots newer than the stream's base.
    /// </summary>
    public async Task ReceiveAsync(bool force, Func<Stream, CancellationToken, Task> produce, CancellationToken cancellationToken)
    {
        var command = $"zfs receive -u{(force ? " -F" : string.Empty)} {ZfsName.Quote(Dataset)}";
        var r = await _runner.RunAsync(Ssh.Command(command) with { WriteStdin = produce }, cancellationToken).ConfigureAwait(false);
        Ssh.ThrowIfSshFailed(r);
        if (r.Succeeded) return;
        var err = r.StandardError.Trim();
        if (err.Contains("destination has been modified", StringComparison.Ordinal) || err.Contains("has snapshots", StringComparison.Ordinal)
            || err.Contains("does not match incremental source", StringComparison.Ordinal) || err.Contains("destination", StringComparison.Ordinal) && err.Contains("exists", StringComparison.Ordinal))
        {
            throw Diverged($"zfs receive on the replica host refused the stream: {err}");
        }

        if (err.Contains("command not found", StringComparison.Ordinal) || err.Contains("zfs: not found", StringComparison.Ordinal))
        {
            throw new VmToolsException("VolumeReplicaZfsUnavailable", FailureKind.ResourceUnavailable, $"zfs is not on the PATH of '{Ssh.Destination.SshTarget}' on the replica host: {err}") { Target = Ssh.Destination.ToString() };
        }

        throw Failed("VolumeReplicaReceiveFailed", "receive into", r);
    }

    /// <summary>zfs rollback -r to <paramref name="snapshotName"/>: destroys the replica's snapshots after it (only ever run for -Force).</summary>
    public async Task RollbackAsync(string snapshotName, CancellationToken cancellationToken)
    {
        var r = await Ssh.RunAsync(_runner, $"zfs rollback -r {ZfsName.Quote(Dataset + "@" + snapshotName)}", cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded) throw Failed("VolumeReplicaRollbackFailed", "roll back", r);
    }

    public async Task DestroySnapshotAsync(string snapshotName, CancellationToken cancellationToken)
    {
        var r = await Ssh.RunAsync(_runner, $"zfs destroy {ZfsName.Quote(Dataset + "@" + snapshotName)}", cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded && !r.StandardError.Contains("could not find", StringComparison.Ordinal) && !r.StandardError.Contains("does not exist", StringComparison.Ordinal))
        {
            throw Failed("VolumeReplicaPruneFailed", "destroy a snapshot of", r);
        }
    }

    internal VmToolsException Diverged(string why)
        => new("VolumeReplicaDiverged", FailureKind.InvalidOperation,
            $"The replica '{Ssh.Destination}' has diverged from the source: {why} Nothing was destroyed; -Force receives with zfs receive -F, which rolls the replica back and destroys what it has beyond the shared snapshot.")
        { Target = Ssh.Destination.ToString() };

    private VmToolsException Failed(string id, string what, CommandResult r)
        => new(id, FailureKind.InvalidOperation, $"Could not {what} '{Dataset}' on {Ssh.Destination.KnownHostsName} (exit {r.ExitCode}): {SshTransport.Scrub(r.StandardError)}") { Target = Ssh.Destination.ToString() };
}
