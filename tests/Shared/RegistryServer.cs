using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VmTools.TestSupport;

/// <summary>
/// A real docker-registry (distribution 2.8, Debian package) on a free 127.0.0.1 port: plain HTTP, or TLS with
/// a throw-away CA and htpasswd (bcrypt) auth. Its CA is published in a certs.d folder for VMTOOLS_CERTS_D.
/// </summary>
public sealed class RegistryServer : IDisposable
{
    public const string User = "ci-user";
    public const string Password = "s3cr3t-Pa55-never-shown";

    private readonly Process _process;
    private readonly TempDirectory _dir;

    private RegistryServer(bool tls, bool bearer = false, string tokenAddress = "127.0.0.1", bool htpasswd = true, string? publicUrl = null)
    {
        var exe = RealComponent.RequireProgram("docker-registry", "apt-get install docker-registry");
        _dir = new TempDirectory("vmtools-registry");
        Port = FreePort();
        StorageRoot = _dir.Combine("storage");
        Directory.CreateDirectory(StorageRoot);
        CertsDirectory = _dir.Combine("certs.d");
        var config = $"""
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {StorageRoot}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{Port}
            """;
        // http.host makes the registry answer with absolute upload Locations on that address.
        if (publicUrl is not null) config += $"\n  host: {publicUrl}";
        if (tls)
        {
            RealComponent.RequireProgram("openssl", "apt-get install openssl");
            RealComponent.RequireProgram("htpasswd", "apt-get install apache2-utils");
            var hostCerts = Path.Combine(CertsDirectory, Host);
            Directory.CreateDirectory(hostCerts);
            var ca = _dir.Combine("ca");
            Programs.MustRun("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=VmTools Test CA",
                "-keyout", ca + ".key", "-out", ca + ".crt");
            Programs.MustRun("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", _dir.Combine("server.key"), "-out", _dir.Combine("server.csr"));
            File.WriteAllText(_dir.Combine("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
            Programs.MustRun("openssl", "x509", "-req", "-in", _dir.Combine("server.csr"), "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
                "-days", "2", "-extfile", _dir.Combine("san.ext"), "-out", _dir.Combine("server.crt"));
            File.Copy(ca + ".crt", Path.Combine(hostCerts, "ca.crt"));
            CaCertificate = ca + ".crt";
            config += $"""

                  tls:
                    certificate: {_dir.Combine("server.crt")}
                    key: {_dir.Combine("server.key")}
                """;
        }

        if (htpasswd && !bearer && (tls || publicUrl is not null))
        {
            RealComponent.RequireProgram("htpasswd", "apt-get install apache2-utils");
            var hash = Programs.MustRun("htpasswd", "-Bbn", User, Password);
            File.WriteAllText(_dir.Combine("htpasswd"), hash);
            config += $"""

                auth:
                  htpasswd:
                    realm: vmtools-test
                    path: {_dir.Combine("htpasswd")}
                """;
        }

        if (bearer)
        {
            Tokens = new TokenServer(_dir.Path, User, Password, tokenAddress);
            config += $"""

                auth:
                  token:
                    realm: {Tokens.Realm}
                    service: {TokenServer.Service}
                    issuer: {TokenServer.Issuer}
                    rootcertbundle: {Tokens.CertificateBundlePath}
                """;
        }

        var configPath = _dir.Combine("config.yml");
        File.WriteAllText(configPath, config);
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        // distribution reads REGISTRY_* variables as configuration overrides; the tests' own must not leak in.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("REGISTRY_", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(key);
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(configPath);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        WaitUntilAnswering(tls);
        IsTls = tls;
    }

    private readonly List<string> _log = new();

    public int Port { get; }

    public string Host => $"127.0.0.1:{Port}";

    public string StorageRoot { get; }

    public string CertsDirectory { get; }

    public string? CaCertificate { get; }

    public bool IsTls { get; }

    public static RegistryServer StartPlain() => new(tls: false);

    public static RegistryServer StartTlsWithAuth() => new(tls: true);

    /// <summary>Plain HTTP on loopback with Bearer token auth from <see cref="TokenServer"/>.</summary>
    public static RegistryServer StartWithTokenAuth() => new(tls: false, bearer: true);

    /// <summary>Token auth whose token service listens on <paramref name="tokenAddress"/> (127.0.0.2: "another host"), over TLS or plain HTTP.</summary>
    public static RegistryServer StartWithTokenAuth(string tokenAddress, bool tls) => new(tls, bearer: true, tokenAddress);

    /// <summary>Plain HTTP with htpasswd auth, answering uploads with absolute Locations on <paramref name="publicUrl"/> (another origin).</summary>
    public static RegistryServer StartWithUploadsElsewhere(string publicUrl) => new(tls: false, publicUrl: publicUrl);

    public TokenServer? Tokens { get; private set; }

    /// <summary>Where the registry keeps a blob's bytes (for tamper tests).</summary>
    public string BlobDataPath(string digest)
    {
        var hex = digest["sha256:".Length..];
        return Path.Combine(StorageRoot, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) { _process.Kill(true); _process.WaitForExit(5000); } } catch (InvalidOperationException) { }
        _process.Dispose();
        Tokens?.Dispose();
        _dir.Dispose();
    }

    private void WaitUntilAnswering(bool tls)
    {
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var url = $"{(tls ? "https" : "http")}://{Host}/v2/";
        var until = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < until)
        {
            if (_process.HasExited) break;
            try
            {
                using var r = http.GetAsync(url).GetAwaiter().GetResult();
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }

            Thread.Sleep(50);
        }

        string log;
        lock (_log) log = string.Join('\n', _log);
        throw new InvalidOperationException($"docker-registry did not answer on {url}: {log}");
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
