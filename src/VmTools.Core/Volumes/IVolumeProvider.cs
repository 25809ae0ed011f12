namespace VmTools.Core.Volumes;

/// <summary>
/// The storage operations a volume store needs, in terms of datasets and mountpoints. Ids,
/// records and persistence stay in <see cref="VolumeStore"/>; a provider only drives the backend.
/// </summary>
public interface IVolumeProvider
{
    string Kind { get; }

    VolumePool Pool { get; }

    /// <summary>Every dataset and snapshot under the pool, keyed by name.</summary>
    Task<IReadOnlyDictionary<string, ZfsDataset>> ListDatasetsAsync(CancellationToken cancellationToken);

    Task CreateFilesystemAsync(string dataset, string mountpoint, long? quotaBytes, CancellationToken cancellationToken);

    Task CreateSnapshotAsync(string snapshot, CancellationToken cancellationToken);

    /// <summary>Shows a snapshot's files read-only at <paramref name="mountpoint"/>.</summary>
    Task CreateReadOnlyViewAsync(string snapshot, string viewDataset, string mountpoint, CancellationToken cancellationToken);

    /// <summary>A writable filesystem that starts as <paramref name="snapshot"/>'s content.</summary>
    Task CloneAsync(string snapshot, string dataset, string mountpoint, CancellationToken cancellationToken);

    /// <summary>Destroys one dataset or snapshot (unmounting first); a missing one is not an error.</summary>
    Task DestroyAsync(string dataset, CancellationToken cancellationToken);

    Task EnsureMountedAsync(string dataset, CancellationToken cancellationToken);

    /// <summary>Makes a filesystem's content its newest snapshot's again (zfs rollback); <paramref name="snapshot"/> must be that newest one.</summary>
    Task RollbackAsync(string snapshot, CancellationToken cancellationToken);

    /// <summary>The snapshots of a filesystem, oldest first.</summary>
    Task<IReadOnlyList<ZfsSnapshot>> ListSnapshotsAsync(string filesystem, CancellationToken cancellationToken);

    /// <summary>Streams <paramref name="snapshot"/> (a delta from <paramref name="fromSnapshot"/> when given) to <paramref name="consume"/>.</summary>
    Task SendAsync(string snapshot, string? fromSnapshot, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken);

    /// <summary>Receives the stream <paramref name="produce"/> writes into <paramref name="filesystem"/>, rolling local changes back.</summary>
    Task ReceiveAsync(string filesystem, Func<Stream, CancellationToken, Task> produce, CancellationToken cancellationToken);

    Task HoldAsync(string snapshot, string tag, CancellationToken cancellationToken);

    /// <summary>Releases a hold; a hold that is not there is not an error.</summary>
    Task ReleaseAsync(string snapshot, string tag, CancellationToken cancellationToken);
}
