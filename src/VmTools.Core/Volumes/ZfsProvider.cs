using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Volumes;

/// <summary>
/// Volumes on a zfs pool backed by a sparse file vdev, driven through the zfs/zpool CLI (argv only,
/// stderr folded into every error). Written against zfs-fuse 0.7 as well as OpenZFS: no zvols, no
/// <c>zfs list -p</c> (properties come from <c>zfs get -H -p</c>), unmount before destroy, snapshots
/// shown through read-only clones because zfs-fuse cannot mount a snapshot.
/// </summary>
public sealed class ZfsProvider : IVolumeProvider
{
    public const string KindName = "zfs";

    /// <summary>flynn's fallback when the size of the filesystem holding the vdev cannot be read (decimal 100 GB).</summary>
    public const long SizeWhenFilesystemUnknown = 100_000_000_000;

    /// <summary>A receive that failed with an I/O error and nothing else: worth one more try with the same stream.</summary>
    public const string TransientReceiveErrorId = "VolumeReceiveIoError";

    /// <summary>zpool refuses vdevs smaller than 64 MiB.</summary>
    public const long MinimumVdevSize = 64L << 20;

    private readonly ICommandRunner _runner;

    private ZfsProvider(VolumePool pool, ICommandRunner runner)
    {
        Pool = pool;
        _runner = runner;
    }

    public string Kind => KindName;

    public VolumePool Pool { get; }

    /// <summary>
    /// Brings the recorded pool online: already imported → used as is; vdev file present → imported
    /// from it; vdev absent → created (sparse, O_EXCL) only when <paramref name="createIfMissing"/>.
    /// A file that holds no pool fails with <c>VolumeVdevNotAPool</c> and is left untouched.
    /// </summary>
    public static async Task<ZfsProvider> OpenAsync(VolumePool pool, ICommandRunner runner, bool createIfMissing, CancellationToken cancellationToken)
    {
        var provider = new ZfsProvider(pool, runner);
        if (!await provider.PoolImportedAsync(cancellationToken).ConfigureAwait(false))
        {
            if (File.Exists(pool.VdevPath))
            {
                await provider.ImportAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (createIfMissing)
            {
                await provider.CreatePoolAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                throw new VmToolsException("VolumePoolUnavailable", FailureKind.ResourceUnavailable,
                    $"Pool '{pool.PoolName}' is not imported and its vdev file '{pool.VdevPath}' is gone.") { Target = pool.VdevPath };
            }
        }

        await provider.EnsureLayoutAsync(cancellationToken).ConfigureAwait(false);
        return provider;
    }

    /// <summary>flynn's rule: 70% of the total size of the filesystem that will hold the vdev, or 100 GB when that cannot be read.</summary>
    public static long DefaultVdevSize(string vdevPath)
    {
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(vdevPath));
            while (dir is not null && !Directory.Exists(dir)) dir = Path.GetDirectoryName(dir);
            if (dir is null) return SizeWhenFilesystemUnknown;
            var total = new DriveInfo(dir).TotalSize;
            return total > 0 ? total / 10 * 7 : SizeWhenFilesystemUnknown;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return SizeWhenFilesystemUnknown;
        }
    }

    public async Task<IReadOnlyDictionary<string, ZfsDataset>> ListDatasetsAsync(CancellationToken cancellationToken)
    {
        var r = await RunAsync("zfs", cancellationToken, "get", "-H", "-p", "-r", "-o", "name,property,value", "type,mounted", Pool.PoolName).ConfigureAwait(false);
        r.EnsureSuccess("ZfsCommandFailed");
        var props = ParseProperties(r.StandardOutput);
        return props.ToDictionary(p => p.Key, p => new ZfsDataset(p.Key, p.Value.GetValueOrDefault("type", "?"), p.Value.GetValueOrDefault("mounted") == "yes"));
    }

    public async Task CreateFilesystemAsync(string dataset, string mountpoint, long? quotaBytes, CancellationToken cancellationToken)
    {
        var args = new List<string> { "create", "-o", "mountpoint=" + mountpoint };
        if (quotaBytes is { } q) args.AddRange(new[] { "-o", "quota=" + q.ToString(CultureInfo.InvariantCulture) });
        args.Add(dataset);
        var r = await RunAsync("zfs", args, cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded && r.StandardError.Contains("already exists", StringComparison.Ordinal))
        {
            throw new VmToolsException("VolumeDatasetExists", FailureKind.ResourceExists, $"Dataset '{dataset}' already exists: {r.StandardError.Trim()}") { Target = dataset };
        }

        r.EnsureSuccess("ZfsCommandFailed");
    }

    public async Task CreateSnapshotAsync(string snapshot, CancellationToken cancellationToken)
        => (await RunAsync("zfs", cancellationToken, "snapshot", snapshot).ConfigureAwait(false)).EnsureSuccess("ZfsCommandFailed");

    public async Task CreateReadOnlyViewAsync(string snapshot, string viewDataset, string mountpoint, CancellationToken cancellationToken)
        => (await RunAsync("zfs", cancellationToken, "clone", "-o", "readonly=on", "-o", "mountpoint=" + mountpoint, snapshot, viewDataset).ConfigureAwait(false))
            .EnsureSuccess("ZfsCommandFailed");

    public async Task CloneAsync(string snapshot, string dataset, string mountpoint, CancellationToken cancellationToken)
        => (await RunAsync("zfs", cancellationToken, "clone", "-o", "mountpoint=" + mountpoint, snapshot, dataset).ConfigureAwait(false))
            .EnsureSuccess("ZfsCommandFailed");

    public async Task DestroyAsync(string dataset, CancellationToken cancellationToken)
    {
        if (!dataset.Contains('@'))
        {
            // zfs-fuse refuses the first destroy of a mounted dataset as busy; unmounting first avoids it.
            await RunWhileBusyAsync(cancellationToken, "unmount", dataset).ConfigureAwait(false);
        }

        var r = await RunWhileBusyAsync(cancellationToken, "destroy", dataset).ConfigureAwait(false);
        if (r.Succeeded || IsDoesNotExist(r.StandardError)) return;
        var err = r.StandardError;
        if (err.Contains("dependent clones", StringComparison.Ordinal))
        {
            throw new VmToolsException("VolumeHasDependentClones", FailureKind.InvalidOperation,
                $"'{dataset}' has clones made from it; remove those volumes first: {err.Trim()}") { Target = dataset };
        }

        if (err.Contains("has children", StringComparison.Ordinal))
        {
            throw new VmToolsException("VolumeHasSnapshots", FailureKind.InvalidOperation,
                $"'{dataset}' still has snapshots: {err.Trim()}") { Target = dataset };
        }

        r.EnsureSuccess(err.Contains("busy", StringComparison.Ordinal) ? "VolumeBusy" : "ZfsCommandFailed");
    }

    public async Task EnsureMountedAsync(string dataset, CancellationToken cancellationToken)
    {
        var r = await RunWhileBusyAsync(cancellationToken, "mount", dataset).ConfigureAwait(false);
        if (!r.Succeeded && !r.StandardError.Contains("already mounted", StringComparison.Ordinal)) r.EnsureSuccess("ZfsCommandFailed");
    }

    public async Task RollbackAsync(string snapshot, CancellationToken cancellationToken)
    {
        // No -r: destroying the newer snapshots (and their views) is the store's decision, made one recorded snapshot at a time.
        var r = await RunWhileBusyAsync(cancellationToken, "rollback", snapshot).ConfigureAwait(false);
        r.EnsureSuccess(r.StandardError.Contains("busy", StringComparison.Ordinal) ? "VolumeBusy" : "ZfsCommandFailed");
    }

    /// <summary>zfs-fuse answers "busy" for a while after a mount or unmount; those calls are retried a few times.</summary>
    private async Task<CommandResult> RunWhileBusyAsync(CancellationToken cancellationToken, params string[] args)
    {
        for (var attempt = 1; ; attempt++)
        {
            var r = await RunAsync("zfs", args, cancellationToken).ConfigureAwait(false);
            if (r.Succeeded || !r.StandardError.Contains("busy", StringComparison.Ordinal) || attempt == 8) return r;
            await Task.Delay(250 * attempt, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<ZfsSnapshot>> ListSnapshotsAsync(string filesystem, CancellationToken cancellationToken)
    {
        var r = await RunAsync("zfs", cancellationToken, "get", "-H", "-p", "-r", "-o", "name,property,value", "type,guid,createtxg,userrefs", filesystem).ConfigureAwait(false);
        if (!r.Succeeded && IsDoesNotExist(r.StandardError))
        {
            throw new VmToolsException("VolumeDatasetMissing", FailureKind.ResourceUnavailable,
                $"Dataset '{filesystem}' does not exist: {r.StandardError.Trim()}") { Target = filesystem };
        }

        r.EnsureSuccess("ZfsCommandFailed");
        return ParseProperties(r.StandardOutput)
            .Where(p => p.Key.StartsWith(filesystem + "@", StringComparison.Ordinal))
            .Select(p => new ZfsSnapshot(p.Key,
                ulong.Parse(p.Value["guid"], CultureInfo.InvariantCulture),
                long.Parse(p.Value["createtxg"], CultureInfo.InvariantCulture),
                long.TryParse(p.Value.GetValueOrDefault("userrefs"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var refs) ? refs : 0))
            .OrderBy(s => s.CreateTxg)
            .ToList();
    }

    public async Task SendAsync(string snapshot, string? fromSnapshot, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        var args = new List<string> { "send" };
        if (fromSnapshot is not null) args.AddRange(new[] { "-i", fromSnapshot });
        args.Add(snapshot);
        var r = await _runner.RunAsync(new CommandSpec("zfs", args) { ReadStdout = consume }, cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            ThrowIfDaemonDown(r);
            throw new VmToolsException("VolumeSendFailed", FailureKind.InvalidOperation,
                $"'{r.Command}' exited with code {r.ExitCode}: {r.StandardError.Trim()}") { Target = snapshot };
        }
    }

    public async Task ReceiveAsync(string filesystem, Func<Stream, CancellationToken, Task> produce, CancellationToken cancellationToken)
    {
        // zfs-fuse fails a receive into a freshly mounted filesystem with "I/O error" now and then;
        // receiving into the unmounted filesystem never does. It is mounted again whatever happens.
        await RunWhileBusyAsync(cancellationToken, "unmount", filesystem).ConfigureAwait(false);
        CommandResult r;
        try
        {
            // -F: the live volume is rolled back to its newest snapshot first, as flynn did; without it
            // any touch of the target (even atime) makes an incremental receive fail.
            r = await _runner.RunAsync(new CommandSpec("zfs", new[] { "receive", "-F", filesystem }) { WriteStdin = produce }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await EnsureMountedAsync(filesystem, CancellationToken.None).ConfigureAwait(false);
        }

        if (r.Succeeded) return;
        ThrowIfDaemonDown(r);
        var err = r.StandardError.Trim();
        var (id, kind) = err switch
        {
            _ when err.Contains("destination has snapshots", StringComparison.Ordinal) => ("VolumeReceiveFullStreamIntoSnapshots", FailureKind.InvalidOperation),
            _ when err.Contains("does not match incremental source", StringComparison.Ordinal)
                || err.Contains("destination has been modified", StringComparison.Ordinal)
                || err.Contains("does not exist", StringComparison.Ordinal) => ("VolumeReceiveMissingBase", FailureKind.InvalidOperation),
            _ when err.Contains("invalid stream", StringComparison.Ordinal) || err.Contains("checksum mismatch", StringComparison.Ordinal)
                || err.Contains("incomplete stream", StringComparison.Ordinal) => ("VolumeStreamInvalid", FailureKind.InvalidData),
            // zfs-fuse answers this now and then even on an unmounted target; the same stream again succeeds.
            _ when err.Contains("I/O error", StringComparison.Ordinal) => (TransientReceiveErrorId, FailureKind.InvalidOperation),
            _ => ("VolumeReceiveFailed", FailureKind.InvalidOperation),
        };
        throw new VmToolsException(id, kind, $"zfs receive into '{filesystem}' rejected the stream: {err}") { Target = filesystem };
    }

    public async Task HoldAsync(string snapshot, string tag, CancellationToken cancellationToken)
        => (await RunAsync("zfs", cancellationToken, "hold", tag, snapshot).ConfigureAwait(false)).EnsureSuccess("ZfsCommandFailed");

    public async Task ReleaseAsync(string snapshot, string tag, CancellationToken cancellationToken)
    {
        var r = await RunAsync("zfs", cancellationToken, "release", tag, snapshot).ConfigureAwait(false);
        if (r.Succeeded || r.StandardError.Contains("no such tag", StringComparison.Ordinal) || IsDoesNotExist(r.StandardError)) return;
        r.EnsureSuccess("ZfsCommandFailed");
    }

    private async Task<bool> PoolImportedAsync(CancellationToken cancellationToken)
    {
        var r = await RunAsync("zpool", cancellationToken, "list", "-H", "-o", "name,health", Pool.PoolName).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            if (r.StandardError.Contains("no such pool", StringComparison.Ordinal)) return false;
            r.EnsureSuccess("ZfsCommandFailed");
        }

        var health = r.StandardOutput.Split('\t', StringSplitOptions.TrimEntries).ElementAtOrDefault(1) ?? string.Empty;
        if (health is not ("ONLINE" or "DEGRADED"))
        {
            throw new VmToolsException("VolumePoolUnavailable", FailureKind.ResourceUnavailable,
                $"Pool '{Pool.PoolName}' is {health}: is its vdev '{Pool.VdevPath}' still there?") { Target = Pool.PoolName };
        }

        return true;
    }

    /// <summary>
    /// Imports from a folder holding only a symlink to the vdev, so zpool scans that one file (not
    /// its neighbours), and keeps the folder: the pool remembers the path it was imported from.
    /// </summary>
    private async Task ImportAsync(CancellationToken cancellationToken)
    {
        var importDir = Path.Combine(Pool.WorkingDirectory, "vdev-import", Pool.PoolName);
        var link = Path.Combine(importDir, Path.GetFileName(Pool.VdevPath));
        var createdDir = !Directory.Exists(importDir);
        Directory.CreateDirectory(importDir);
        if (File.Exists(link) || Directory.Exists(link)) File.Delete(link);
        File.CreateSymbolicLink(link, Path.GetFullPath(Pool.VdevPath));
        try
        {
            var listing = await RunAsync("zpool", cancellationToken, "import", "-d", importDir).ConfigureAwait(false);
            var found = listing.StandardOutput.Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.StartsWith("pool:", StringComparison.Ordinal))
                .Select(l => l["pool:".Length..].Trim())
                .ToList();
            if (found.Count == 0)
            {
                throw new VmToolsException("VolumeVdevNotAPool", FailureKind.InvalidData,
                    $"'{Pool.VdevPath}' exists but holds no zfs pool; it was left untouched. Choose another -VdevPath or remove the file. {listing.StandardError.Trim()}".TrimEnd())
                    { Target = Pool.VdevPath };
            }

            if (!found.Contains(Pool.PoolName, StringComparer.Ordinal))
            {
                throw new VmToolsException("VolumePoolNameMismatch", FailureKind.InvalidData,
                    $"'{Pool.VdevPath}' holds pool '{string.Join("', '", found)}', not '{Pool.PoolName}'; it was left untouched.") { Target = Pool.VdevPath };
            }

            (await RunAsync("zpool", cancellationToken, "import", "-d", importDir, Pool.PoolName).ConfigureAwait(false)).EnsureSuccess("VolumePoolImportFailed");
        }
        catch
        {
            File.Delete(link);
            if (createdDir) TryDeleteEmptyDirectory(importDir);
            throw;
        }
    }

    private async Task CreatePoolAsync(CancellationToken cancellationToken)
    {
        var size = Pool.VdevSizeBytes > 0 ? Pool.VdevSizeBytes : DefaultVdevSize(Pool.VdevPath);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(Pool.VdevPath))!);
        try
        {
            // O_EXCL: never truncate a file someone else (or an earlier run) left there.
            using var fs = AtomicFile.Create(Pool.VdevPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            fs.SetLength(size);
        }
        catch (IOException) when (File.Exists(Pool.VdevPath))
        {
            await ImportAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        var r = await RunAsync("zpool", cancellationToken, "create", "-m", "none", Pool.PoolName, Path.GetFullPath(Pool.VdevPath)).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            File.Delete(Pool.VdevPath);
            r.EnsureSuccess("VolumePoolCreateFailed");
        }
    }

    private async Task EnsureLayoutAsync(CancellationToken cancellationToken)
    {
        var r = await RunAsync("zfs", cancellationToken, "list", "-H", "-o", "name", "-r", "-d", "1", Pool.PoolName).ConfigureAwait(false);
        r.EnsureSuccess("ZfsCommandFailed");
        var existing = r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var parent in VolumeTypes.All.Append(VolumeTypes.Views))
        {
            Directory.CreateDirectory(Pool.MountDirectory(parent));
            var name = Pool.PoolName + "/" + parent;
            if (existing.Contains(name)) continue;
            var c = await RunAsync("zfs", cancellationToken, "create", name).ConfigureAwait(false);
            if (!c.Succeeded && !c.StandardError.Contains("already exists", StringComparison.Ordinal)) c.EnsureSuccess("ZfsCommandFailed");
        }
    }

    /// <summary>Parses <c>zfs get -H -p -o name,property,value</c> into name → property → value.</summary>
    private static Dictionary<string, Dictionary<string, string>> ParseProperties(string output)
    {
        var result = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.TrimEnd('\r').Split('\t');
            if (parts.Length < 3) continue;
            if (!result.TryGetValue(parts[0], out var props)) result[parts[0]] = props = new Dictionary<string, string>(StringComparer.Ordinal);
            props[parts[1]] = parts[2];
        }

        return result;
    }

    private Task<CommandResult> RunAsync(string program, CancellationToken cancellationToken, params string[] args) => RunAsync(program, args, cancellationToken);

    private async Task<CommandResult> RunAsync(string program, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        CommandResult r;
        try
        {
            r = await _runner.RunAsync(new CommandSpec(program, args), cancellationToken).ConfigureAwait(false);
        }
        catch (VmToolsException e) when (e.ErrorId == "HostCommandNotFound")
        {
            throw new VmToolsException("ZfsUnavailable", FailureKind.ResourceUnavailable,
                $"'{program}' is not installed: install zfs-fuse or OpenZFS. {e.Message}", e) { Target = program };
        }

        ThrowIfDaemonDown(r);
        return r;
    }

    private static void ThrowIfDaemonDown(CommandResult r)
    {
        if (!r.Succeeded && (r.StandardError.Contains("zfs-fuse daemon is running", StringComparison.Ordinal)
                             || r.StandardError.Contains("failed to initialize ZFS library", StringComparison.Ordinal)))
        {
            throw new VmToolsException("ZfsUnavailable", FailureKind.ResourceUnavailable,
                $"zfs is not answering ('{r.Command}'): {r.StandardError.Trim()}") { Target = r.Command.FileName };
        }
    }

    private static bool IsDoesNotExist(string stderr) => stderr.Contains("does not exist", StringComparison.Ordinal) || stderr.Contains("could not find any snapshots", StringComparison.Ordinal);

    private static void TryDeleteEmptyDirectory(string dir)
    {
        try { Directory.Delete(dir); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
