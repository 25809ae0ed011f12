using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace VmTools.TestSupport;

/// <summary>
/// A Docker token service (distribution's token auth spec) for a real docker-registry in token mode: checks
/// Basic credentials, grants the scopes asked for, and signs RS256 JWTs with a key whose self-signed certificate
/// the registry trusts (rootcertbundle) and receives in the x5c header. Anonymous requests get pull-less tokens.
/// </summary>
public sealed class TokenServer : IDisposable
{
    public const string Service = "vmtools-test-registry";
    public const string Issuer = "vmtools-test-issuer";

    private readonly HttpListener _listener = new();
    private readonly RSA _key = RSA.Create(2048);
    private readonly X509Certificate2 _cert;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly System.Collections.Concurrent.ConcurrentQueue<TokenRequest> _requests = new();
    private int _tokensIssued;

    /// <param name="address">The loopback address to listen on; another one (127.0.0.2) stands for "another host".</param>
    public TokenServer(string directory, string user, string password, string address = "127.0.0.1")
    {
        Address = address;
        User = user;
        Password = password;
        var request = new CertificateRequest("CN=" + Issuer, _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        _cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        CertificateBundlePath = Path.Combine(directory, "token-signer.crt");
        File.WriteAllText(CertificateBundlePath, _cert.ExportCertificatePem());
        for (var attempt = 0; ; attempt++)
        {
            Port = Random.Shared.Next(20000, 60000);
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://{address}:{Port}/");
            try { _listener.Start(); break; }
            catch (HttpListenerException) when (attempt < 20) { _listener.Close(); }
        }

        _loop = Task.Run(ServeAsync);
    }

    public string User { get; }

    public string Password { get; }

    public int Port { get; }

    public string Address { get; }

    public string Realm => $"http://{Address}:{Port}/token";

    /// <summary>Every request received, with the Authorization header as sent (null when absent), so tests can assert a credential never arrived.</summary>
    public IReadOnlyList<TokenRequest> Requests => _requests.ToArray();

    public string CertificateBundlePath { get; }

    public int TokensIssued => Volatile.Read(ref _tokensIssued);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        try { _loop.Wait(2000); } catch (AggregateException) { }
        _key.Dispose();
        _cert.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (HttpListenerException) { return; }
            catch (ObjectDisposedException) { return; }

            try
            {
                Answer(context);
            }
            finally
            {
                context.Response.Close();
            }
        }
    }

    private void Answer(HttpListenerContext context)
    {
        var authorized = false;
        var header = context.Request.Headers["Authorization"];
        _requests.Enqueue(new TokenRequest(context.Request.Url?.PathAndQuery ?? "", header));
        if (header is not null && header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..]));
            if (decoded == User + ":" + Password) authorized = true;
            else { context.Response.StatusCode = 401; return; }
        }

        var access = new List<object>();
        foreach (var scope in context.Request.QueryString.GetValues("scope") ?? Array.Empty<string>())
        {
            // repository:NAME:ACTIONS — NAME may contain ':' for a port-qualified registry, so split from both ends.
            var first = scope.IndexOf(':');
            var last = scope.LastIndexOf(':');
            if (first < 0 || last <= first) continue;
            var actions = authorized ? scope[(last + 1)..].Split(',') : Array.Empty<string>();
            access.Add(new { type = scope[..first], name = scope[(first + 1)..last], actions });
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var token = Jwt(new Dictionary<string, object>
        {
            ["iss"] = Issuer, ["sub"] = authorized ? User : "", ["aud"] = Service,
            ["exp"] = now + 300, ["nbf"] = now - 30, ["iat"] = now, ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
        });
        Interlocked.Increment(ref _tokensIssued);
        var body = JsonSerializer.SerializeToUtf8Bytes(new { token, access_token = token, expires_in = 300 });
        context.Response.ContentType = "application/json";
        context.Response.OutputStream.Write(body);
    }

    private string Jwt(object claims)
    {
        var header = new Dictionary<string, object> { ["typ"] = "JWT", ["alg"] = "RS256", ["x5c"] = new[] { Convert.ToBase64String(_cert.RawData) } };
        var signingInput = B64(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + B64(JsonSerializer.SerializeToUtf8Bytes(claims));
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + B64(signature);
    }

    private static string B64(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>One request the token server received.</summary>
public sealed record TokenRequest(string PathAndQuery, string? Authorization);
