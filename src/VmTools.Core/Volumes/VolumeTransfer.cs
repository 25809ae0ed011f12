using System.Buffers;
using System.Diagnostics;
using VmTools.Core.Host;

namespace VmTools.Core.Volumes;

/// <summary>
/// Moves snapshots between volumes with zfs send/receive: to a file, to any stream, or straight
/// into a receiving volume (possibly on another pool). The delta starts from the newest snapshot
/// both sides share (matched by zfs guid, not only the receiver's last one as flynn did); with
/// none shared the stream is full. A send holds its snapshot (recorded first, so the next open
/// releases a hold an interrupted send left); a failure or cancellation on either side kills both.
/// </summary>
public sealed class VolumeTransfer
{
    private const int BufferSize = 1 << 20;
    private readonly VolumeStore _store;

    public VolumeTransfer(VolumeStore store) => _store = store;

    /// <summary>Writes the stream for <paramref name="snapshotId"/> to <paramref name="destination"/>.</summary>
    public async Task<VolumeSendResult> SendAsync(string snapshotId, IReadOnlyList<VolumeHave>? haves, Stream destination,
        IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var plan = await PlanAsync(snapshotId, Task.FromResult(haves ?? Array.Empty<VolumeHave>()), cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        await WithHoldAsync(plan, async () =>
        {
            await plan.Provider.SendAsync(plan.Snapshot.Dataset, plan.From, async (stdout, ct) =>
            {
                bytes = await CopyAsync(stdout, destination, n => progress?.Report(new TransferProgress("Sending volume snapshot", plan.Snapshot.Dataset, n, null, clock.Elapsed)), ct)
                    .ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
        return new VolumeSendResult { SnapshotId = plan.Snapshot.Id, Snapshot = plan.Snapshot.Dataset, FromSnapshot = plan.From, BytesSent = bytes, Elapsed = clock.Elapsed };
    }

    /// <summary>Writes the stream to a file, atomically: a failed or cancelled send leaves no file behind.</summary>
    public async Task<VolumeSendResult> SendToFileAsync(string snapshotId, IReadOnlyList<VolumeHave>? haves, string path, bool overwrite,
        IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        path = Path.GetFullPath(path);
        if (!overwrite && File.Exists(path))
        {
            throw new VmToolsException("VolumeStreamFileExists", FailureKind.ResourceExists, $"'{path}' already exists; use -Force to replace it.") { Target = path };
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = AtomicFile.TempPathFor(path);
        try
        {
            VolumeSendResult result;
            // A stream holds the volume's whole content: private, like the volume itself.
            await using (var file = AtomicFile.Create(temp, PrivateFiles.FileMode))
            {
                result = await SendAsync(snapshotId, haves, file, progress, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite);
            return result with { Path = path };
        }
        catch
        {
            AtomicFile.TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Pipes zfs send into zfs receive on the target volume and records what arrived as a new
    /// snapshot volume. A full stream into a volume that has snapshots is refused before anything runs.
    /// </summary>
    public async Task<Volume> TransferAsync(string snapshotId, string targetVolumeId, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await TransferOnceAsync(snapshotId, targetVolumeId, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (VmToolsException e) when (e.ErrorId == ZfsProvider.TransientReceiveErrorId)
        {
            // zfs receive rolled back (had the snapshot landed, the first try would have recorded it); the send runs again.
            return await TransferOnceAsync(snapshotId, targetVolumeId, progress, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<Volume> TransferOnceAsync(string snapshotId, string targetVolumeId, IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var target = RequireWritableTarget(targetVolumeId);
        var targetProvider = _store.Provider(target.Pool);
        // The receiver's snapshots and the sender's are listed at once: each is a zfs call (tens of ms on zfs-fuse).
        var listingHaves = _store.ListHavesAsync(target.Id, cancellationToken);
        var plan = await PlanAsync(snapshotId, listingHaves, cancellationToken).ConfigureAwait(false);
        var haves = await listingHaves.ConfigureAwait(false);
        if (plan.From is null && haves.Count > 0) throw FullIntoSnapshots(target, haves);

        try
        {
            await PipeAsync(plan, (produce, ct) => targetProvider.ReceiveAsync(target.Dataset, produce, ct), "Transferring volume snapshot", progress, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (VmToolsException e) when (e.ErrorId == ZfsProvider.TransientReceiveErrorId)
        {
            if (!await ArrivedAsync(targetProvider, target, plan.Self.Guid, cancellationToken).ConfigureAwait(false)) throw;
        }

        return await RecordReceivedAsync(target, targetProvider, plan.Self.Guid, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs zfs send for <paramref name="plan"/> (holding the snapshot) into the stdin of a receiving
    /// process that <paramref name="receive"/> starts, with splice between the pipes. The first side to
    /// fail cancels the other, so neither lingers; that side's error is the one thrown.
    /// </summary>
    internal async Task<long> PipeAsync(TransferPlan plan, Func<Func<Stream, CancellationToken, Task>, CancellationToken, Task> receive, string activity,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sendStdout = new TaskCompletionSource<Stream>(TaskCreationOptions.RunContinuationsAsynchronously);
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Exception? first = null;
        long bytes = 0;

        async Task Guard(Func<Task> side)
        {
            try
            {
                await side().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref first, e, null);
                both.Cancel();
                throw;
            }
        }

        var receiving = Guard(() => receive(async (stdin, ct) =>
        {
            try
            {
                var source = await sendStdout.Task.WaitAsync(ct).ConfigureAwait(false);
                bytes = await CopyAsync(source, stdin, n => progress?.Report(new TransferProgress(activity, plan.Snapshot.Dataset, n, null, clock.Elapsed)), ct,
                    swallowWriteErrors: true).ConfigureAwait(false);
                copied.TrySetResult();
            }
            catch (Exception e)
            {
                copied.TrySetException(e);
                throw;
            }
        }, both.Token));

        var send = Guard(() => WithHoldAsync(plan, () => plan.Provider.SendAsync(plan.Snapshot.Dataset, plan.From, async (stdout, ct) =>
        {
            sendStdout.TrySetResult(stdout);
            try
            {
                await copied.Task.WaitAsync(ct).ConfigureAwait(false);
            }
            catch
            {
                both.Cancel();
                throw;
            }
        }, both.Token)));

        try
        {
            await Task.WhenAll(send, receiving).ConfigureAwait(false);
        }
        catch
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw first ?? new VmToolsException("VolumeTransferFailed", FailureKind.InvalidOperation, "The transfer failed.");
        }

        progress?.Report(new TransferProgress(activity, plan.Snapshot.Dataset, Math.Max(bytes, 1), Math.Max(bytes, 1), clock.Elapsed));
        return bytes;
    }

    /// <summary>
    /// Receives a stream (from Send-VmVolumeSnapshot or zfs send) into a volume. The BEGIN record is
    /// read first, so a non-stream, a full stream into a volume with snapshots, or an incremental
    /// whose base the volume lacks is refused with nothing touched.
    /// </summary>
    public async Task<Volume> ReceiveAsync(string targetVolumeId, Stream source, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var target = RequireWritableTarget(targetVolumeId);
        var provider = _store.Provider(target.Pool);
        var head = new byte[ZfsStreamHeader.Length];
        var got = await source.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        var header = ZfsStreamHeader.Parse(head.AsSpan(0, got));
        var haves = await _store.ListHavesAsync(target.Id, cancellationToken).ConfigureAwait(false);
        if (haves.Any(h => h.Guid == header.ToGuid))
        {
            throw new VmToolsException("VolumeReceiverHasSnapshot", FailureKind.ResourceExists,
                $"Volume '{target.Id}' already has snapshot '{header.SnapshotName}'.") { Target = target.Id };
        }

        if (!header.IsIncremental && haves.Count > 0) throw FullIntoSnapshots(target, haves);
        if (header.IsIncremental && haves.All(h => h.Guid != header.FromGuid))
        {
            throw new VmToolsException("VolumeReceiveMissingBase", FailureKind.InvalidOperation,
                $"The stream is a delta from a snapshot volume '{target.Id}' does not have; send a full stream or one based on a snapshot it has (Get-VmVolumeHave).") { Target = target.Id };
        }

        var clock = Stopwatch.StartNew();
        var afterHeader = source.CanSeek ? source.Position : -1;
        Task Receive() => provider.ReceiveAsync(target.Dataset, async (stdin, ct) =>
        {
            try
            {
                await stdin.WriteAsync(head.AsMemory(0, got), ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return; // zfs receive exited; its exit code and stderr say why.
            }

            await CopyAsync(source, stdin, n => progress?.Report(new TransferProgress("Receiving volume snapshot", target.Dataset, got + n, null, clock.Elapsed)), ct,
                swallowWriteErrors: true).ConfigureAwait(false);
        }, cancellationToken);

        try
        {
            await Receive().ConfigureAwait(false);
        }
        catch (VmToolsException e) when (e.ErrorId == ZfsProvider.TransientReceiveErrorId)
        {
            if (!await ArrivedAsync(provider, target, header.ToGuid, cancellationToken).ConfigureAwait(false))
            {
                // A file can be read again (a pipe cannot): zfs receive rolled back, so the stream is offered once more.
                if (afterHeader < 0) throw;
                source.Position = afterHeader;
                await Receive().ConfigureAwait(false);
            }
        }

        return await RecordReceivedAsync(target, provider, header.ToGuid, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the snapshot is on the target after all: zfs-fuse has answered "I/O error" after the
    /// snapshot was committed, and receiving it again would then fail ("destination has snapshots").
    /// </summary>
    private static async Task<bool> ArrivedAsync(IVolumeProvider provider, Volume target, ulong guid, CancellationToken cancellationToken)
        => (await provider.ListSnapshotsAsync(target.Dataset, cancellationToken).ConfigureAwait(false)).Any(s => s.Guid == guid);

    private Volume RequireWritableTarget(string targetVolumeId)
    {
        var target = _store.RequireAvailable(_store.GetVolume(targetVolumeId));
        if (target.IsSnapshot)
        {
            throw new VmToolsException("VolumeIsASnapshot", FailureKind.InvalidArgument,
                $"'{target.Id}' is a snapshot; receive into a volume (New-VmVolume).") { Target = target.Id };
        }

        return target;
    }

    private async Task<Volume> RecordReceivedAsync(Volume target, IVolumeProvider provider, ulong guid, CancellationToken cancellationToken)
    {
        var snaps = await provider.ListSnapshotsAsync(target.Dataset, cancellationToken).ConfigureAwait(false);
        var received = snaps.FirstOrDefault(s => s.Guid == guid)
            ?? throw new VmToolsException("VolumeReceiveFailed", FailureKind.InvalidOperation,
                $"zfs receive finished but no snapshot with guid {guid} is on '{target.Dataset}'.") { Target = target.Id };
        return await _store.RecordSnapshotAsync(provider, target, received.Name, VolumeStore.NewId(), cancellationToken).ConfigureAwait(false);
    }

    internal async Task<TransferPlan> PlanAsync(string snapshotId, Task<IReadOnlyList<VolumeHave>> receiverHaves, CancellationToken cancellationToken)
    {
        var snapshot = _store.RequireAvailable(_store.GetVolume(snapshotId));
        if (!snapshot.IsSnapshot)
        {
            throw new VmToolsException("VolumeNotASnapshot", FailureKind.InvalidArgument,
                $"'{snapshot.Id}' is a volume, not a snapshot; send one of its snapshots (New-VmVolumeSnapshot).") { Target = snapshot.Id };
        }

        var provider = _store.Provider(snapshot.Pool);
        var local = await provider.ListSnapshotsAsync(snapshot.FilesystemDataset, cancellationToken).ConfigureAwait(false);
        var haves = await receiverHaves.ConfigureAwait(false);
        var self = local.FirstOrDefault(s => s.Name == snapshot.Dataset)
            ?? throw new VmToolsException("VolumeMissing", FailureKind.ResourceUnavailable, $"Snapshot '{snapshot.Dataset}' is gone.") { Target = snapshot.Id };
        if (haves.Any(h => h.Guid == self.Guid))
        {
            throw new VmToolsException("VolumeReceiverHasSnapshot", FailureKind.ResourceExists,
                $"The receiver already has snapshot '{self.ShortName}'; there is nothing to send.") { Target = snapshot.Id };
        }

        var shared = haves.Select(h => h.Guid).ToHashSet();
        var from = local.Where(s => s.CreateTxg < self.CreateTxg && shared.Contains(s.Guid)).MaxBy(s => s.CreateTxg);
        return new TransferPlan(snapshot, provider, self, from);
    }

    private async Task WithHoldAsync(TransferPlan plan, Func<Task> send)
    {
        var tag = VolumeStore.SendHoldTag + "-" + Guid.NewGuid().ToString("N")[..12];
        // Recorded before it is placed: if this process dies mid-send, the next open releases it.
        _store.Records.AddHold(plan.Snapshot.Pool, plan.Snapshot.Dataset, tag);
        try
        {
            await plan.Provider.HoldAsync(plan.Snapshot.Dataset, tag, CancellationToken.None).ConfigureAwait(false);
            await send().ConfigureAwait(false);
        }
        finally
        {
            await plan.Provider.ReleaseAsync(plan.Snapshot.Dataset, tag, CancellationToken.None).ConfigureAwait(false);
            _store.Records.RemoveHold(plan.Snapshot.Dataset, tag);
        }
    }

    private static VmToolsException FullIntoSnapshots(Volume target, IReadOnlyList<VolumeHave> haves)
        => new("VolumeReceiveFullStreamIntoSnapshots", FailureKind.InvalidOperation,
            $"Volume '{target.Id}' already has {haves.Count} snapshot(s) and shares none with the stream's source, so only a full stream could be sent, "
            + "and zfs refuses a full stream into a volume with snapshots. Receive into a new volume instead.") { Target = target.Id };

    /// <summary>
    /// Copies pipe to pipe with splice(2) (zfs send straight into zfs receive), anything else with a
    /// 1 MiB buffer, reporting the running total. With <paramref name="swallowWriteErrors"/> a closed
    /// destination (the receiving process died) ends the copy quietly: that process's exit code and
    /// stderr are the real error, and they are reported by its runner.
    /// </summary>
    private static async Task<long> CopyAsync(Stream source, Stream destination, Action<long> report, CancellationToken cancellationToken, bool swallowWriteErrors = false)
    {
        if (PipeSplice.CanSplice(source, destination))
        {
            long moved = 0;
            try
            {
                return await PipeSplice.CopyAsync(source, destination, n => report(moved = n), cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e) when (swallowWriteErrors && e.HResult == PipeSplice.BrokenPipe)
            {
                return moved;
            }
        }

        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long total = 0;
        try
        {
            int n;
            while ((n = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                try
                {
                    await destination.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                }
                catch (IOException) when (swallowWriteErrors)
                {
                    return total;
                }

                total += n;
                report(total);
            }

            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>What a send will do: the snapshot, its provider and zfs identity, and the shared snapshot a delta starts from (null: full).</summary>
    internal sealed record TransferPlan(Volume Snapshot, IVolumeProvider Provider, ZfsSnapshot Self, ZfsSnapshot? FromSnapshot)
    {
        /// <summary>The zfs send -i argument.</summary>
        public string? From => FromSnapshot is null ? null : "@" + FromSnapshot.ShortName;
    }
}
