using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace VmTools.Core.Registry;

/// <summary>
/// One pooled HttpClient per registry host and trust setting, kept for the life of the process so
/// that repeated cmdlet calls in a session reuse connections (a warm cache hit is one HEAD).
/// TLS is verified against the system store plus certs.d CAs for that host.
/// </summary>
internal sealed class RegistryTransport
{
    private static readonly ConcurrentDictionary<string, RegistryTransport> Pool = new();

    private RegistryTransport(string registry, RegistryClientOptions options)
    {
        Registry = registry;
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 32,
            AllowAutoRedirect = true, // blob GETs may redirect to storage; .NET drops Authorization on redirect.
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(15),
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, chain, errors) => Validate(cert, chain, errors, options),
            },
        };
        Client = new HttpClient(handler) { Timeout = options.RequestTimeout };
        Client.DefaultRequestHeaders.UserAgent.ParseAdd("VmTools/0.1");
    }

    public string Registry { get; }

    public HttpClient Client { get; }

    /// <summary>Set when the TLS handshake failed because we did not trust the certificate (not because the server spoke HTTP).</summary>
    public bool CertificateRejected { get; private set; }

    /// <summary>The base URI once chosen (https, or http where allowed and https does not answer).</summary>
    public Uri? BaseUri { get; set; }

    public static RegistryTransport For(string registry, RegistryClientOptions options)
    {
        var key = $"{registry}|{options.Insecure}|{string.Join(':', options.CertificateDirectories)}|{options.RequestTimeout}";
        return Pool.GetOrAdd(key, _ => new RegistryTransport(registry, options));
    }

    private bool Validate(X509Certificate? cert, X509Chain? chain, SslPolicyErrors errors, RegistryClientOptions options)
    {
        if (errors == SslPolicyErrors.None || options.Insecure) return true;
        if (errors == SslPolicyErrors.RemoteCertificateChainErrors && cert is not null && TrustedByCertsD(new X509Certificate2(cert), chain, options)) return true;
        CertificateRejected = true;
        return false;
    }

    private bool TrustedByCertsD(X509Certificate2 cert, X509Chain? presented, RegistryClientOptions options)
    {
        var cas = new X509Certificate2Collection();
        foreach (var dir in options.CertificateDirectories)
        {
            var hostDir = Path.Combine(dir, Registry);
            if (!Directory.Exists(hostDir)) continue;
            foreach (var file in Directory.EnumerateFiles(hostDir, "*.crt"))
            {
                try { cas.ImportFromPemFile(file); } catch (System.Security.Cryptography.CryptographicException) { }
            }
        }

        if (cas.Count == 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(cas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }

        return chain.Build(cert);
    }
}
