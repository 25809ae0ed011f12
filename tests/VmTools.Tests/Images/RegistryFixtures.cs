using VmTools.TestSupport;

namespace VmTools.Tests.Images;

/// <summary>One plain-HTTP registry for the cache tests of this assembly (repositories are unique per test).</summary>
public sealed class PlainRegistryFixture : IDisposable
{
    private RegistryServer? _server;

    public RegistryServer Server => _server ??= RegistryServer.StartPlain();

    public void Dispose() => _server?.Dispose();
}

/// <summary>A session with its own VMTOOLS_HOME (fresh state and cache), in a folder outside any git tree.</summary>
public sealed class CacheSession : IDisposable
{
    public CacheSession(IDictionary<string, string?>? env = null)
    {
        Home = new TempDirectory("vmtools-home");
        Work = new TempDirectory("vmtools-work");
        var all = new Dictionary<string, string?> { ["VMTOOLS_HOME"] = Home.Path, ["REGISTRY_CACHE"] = null, ["QCOW2_CACHE_TAG"] = null, ["VMTOOLS_CERTS_D"] = null, ["REGISTRY_AUTH_FILE"] = null, ["VMTOOLS_TRUSTED_TOKEN_REALMS"] = null };
        if (env is not null) foreach (var (k, v) in env) all[k] = v;
        Ps = new PowerShellHost(all);
        Ps.SetLocation(Work.Path);
    }

    public TempDirectory Home { get; }

    public TempDirectory Work { get; }

    public PowerShellHost Ps { get; }

    public string StoreDirectory => Path.Combine(Home.Path, "cache", "images");

    public string PartialDirectory => Path.Combine(Home.Path, "cache", "partial");

    public void Dispose()
    {
        Ps.Dispose();
        Home.Dispose();
        Work.Dispose();
    }
}
