using System.Collections;
using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.Core.Volumes;
using VmTools.Core.Volumes.Replication;

namespace VmTools;

/// <summary>
/// What the VmVolume cmdlets share: the state database opened once per invocation and the volume
/// store restored from it (pools imported, volumes re-mounted, stale send holds released) before
/// the first pipeline item. Restore warnings (a pool unavailable, a volume missing) become warnings.
/// </summary>
public abstract class VolumeCmdlet : VmToolsCmdlet, IDisposable
{
    private StateDb? _db;
    private VolumeStore? _store;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        _db = OpenState();
    }

    /// <summary>Runs volume work for one pipeline item; a core failure is written as that item's error.</summary>
    protected T? WithStore<T>(Func<VolumeStore, CoreContext, Task<T>> work) where T : class
        => TryRunCore(async ctx => await work(await StoreAsync(ctx).ConfigureAwait(false), ctx).ConfigureAwait(false));

    /// <summary>Like <see cref="WithStore{T}"/> but a failure terminates the command.</summary>
    protected T WithStoreOrStop<T>(Func<VolumeStore, CoreContext, Task<T>> work)
        => RunCore(async ctx => await work(await StoreAsync(ctx).ConfigureAwait(false), ctx).ConfigureAwait(false));

    /// <summary>The VM records, for checks on which VM has a volume's disk attached.</summary>
    protected VmStore VmRecords => new(_db!, Paths);

    /// <summary>The volume ids <paramref name="requested"/> (ids, names or patterns of either) stands for under <see cref="NamePatterns"/>' convention.</summary>
    protected IEnumerable<string> ExpandVolumeIds(IEnumerable<string> requested)
        => NamePatterns.Expand(requested, () => WithStoreOrStop((store, _) => Task.FromResult(store.Volumes)), v => v.Id, v => v.Name);

    protected static Dictionary<string, string> ToMetadata(Hashtable? table)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (table is null) return result;
        foreach (DictionaryEntry e in table) result[e.Key.ToString()!] = e.Value?.ToString() ?? string.Empty;
        return result;
    }

    /// <summary>The ssh client settings the replication cmdlets share, with paths resolved against the current location.</summary>
    protected SshOptions SshOptionsFrom(string? identityFile, string? knownHostsFile, bool skipHostKeyCheck) => new()
    {
        IdentityFile = identityFile is null ? null : ResolvePath(identityFile),
        KnownHostsFile = knownHostsFile is null ? null : ResolvePath(knownHostsFile),
        SkipHostKeyCheck = skipHostKeyCheck,
    };

    public void Dispose()
    {
        _db?.Dispose();
        _db = null;
        GC.SuppressFinalize(this);
    }

    private async Task<VolumeStore> StoreAsync(CoreContext ctx)
        => _store ??= await VolumeStore.OpenAsync(_db!, ProcessRunner.Instance, defaultPool: null, warn: ctx.Warning, cancellationToken: ctx.Cancellation).ConfigureAwait(false);
}
