using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Volumes;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Volumes;

/// <summary>
/// A temp folder with a state database and file-vdev pools named uniquely for this test; every
/// pool it handed out is destroyed afterwards, whether imported, exported or faulted.
/// </summary>
internal sealed class VolumeSandbox : IDisposable
{
    public const long PoolSize = 512L << 20;

    private readonly TempDirectory _dir = new("vmtools-vol");
    private readonly List<string> _pools = new();
    private StateDb? _db;

    public VolumeSandbox(ZfsFuseDaemon daemon) => daemon.Require();

    public string DatabasePath => _dir.Combine("state", "vmtools.db");

    public string Combine(params string[] parts) => _dir.Combine(parts);

    public StateDb OpenDb() => StateDb.Open(DatabasePath);

    public VolumePool NewPool(string name = VolumePool.DefaultName, long size = PoolSize)
    {
        var pool = ZfsFuseDaemon.NewPoolName();
        _pools.Add(pool);
        return new VolumePool
        {
            Name = name,
            PoolName = pool,
            VdevPath = _dir.Combine("vdev", pool + ".vdev"),
            VdevSizeBytes = size,
            WorkingDirectory = _dir.Combine("zfs-" + name),
        };
    }

    /// <summary>Opens the store as a restarted host would: a default-pool factory that must never run after a restore.</summary>
    public static Task<VolumeStore> ReopenAsync(StateDb db)
        => VolumeStore.OpenAsync(db, ProcessRunner.Instance, _ => throw new Xunit.Sdk.XunitException("the default-pool factory ran after a restore"),
            cancellationToken: TestContext.Current.CancellationToken);

    /// <summary>A store with a new pool over a database the sandbox owns and closes: what most tests need.</summary>
    public Task<VolumeStore> NewStoreAsync(ICommandRunner? runner = null) => NewStoreWithPoolAsync(_db ??= OpenDb(), runner: runner);

    public async Task<VolumeStore> NewStoreWithPoolAsync(StateDb db, VolumePool? pool = null, ICommandRunner? runner = null)
    {
        var store = await VolumeStore.OpenAsync(db, runner ?? ProcessRunner.Instance, cancellationToken: TestContext.Current.CancellationToken);
        await store.InitializePoolAsync(pool ?? NewPool(), TestContext.Current.CancellationToken);
        return store;
    }

    /// <summary>What a host shutdown does to the pool: exported, every mount gone.</summary>
    public static void Export(VolumePool pool) => Programs.MustRun("zpool", "export", "-f", pool.PoolName);

    public void Dispose()
    {
        _db?.Dispose();
        foreach (var p in _pools) ZfsFuseDaemon.DestroyPool(p);
        _dir.Dispose();
    }
}
