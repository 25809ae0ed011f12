using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace VmTools.TestSupport;

/// <summary>
/// A few Docker-API calls over the engine's unix socket with plain HttpClient: independent of the
/// Docker.DotNet code under test, to import base images and to see what a test left behind.
/// </summary>
public sealed class EngineApi : IDisposable
{
    private readonly HttpClient _http;

    public EngineApi(string socket)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://engine/v1.41/"), Timeout = TimeSpan.FromMinutes(10) };
    }

    public bool Ping()
    {
        try
        {
            using var r = _http.GetAsync("_ping").GetAwaiter().GetResult();
            return r.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>Imports a root filesystem tar as image <paramref name="repositoryAndTag"/> (like `podman import - NAME`) and returns its id.</summary>
    public string ImportRootfs(string tarPath, string repositoryAndTag)
    {
        using var body = new StreamContent(File.OpenRead(tarPath));
        body.Headers.ContentType = new("application/x-tar");
        using var r = _http.PostAsync("images/create?fromSrc=-&repo=" + Uri.EscapeDataString(repositoryAndTag), body).GetAwaiter().GetResult();
        var text = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        if (!r.IsSuccessStatusCode || text.Contains("\"error\"", StringComparison.Ordinal)) throw new InvalidOperationException($"Import of {tarPath} failed: {(int)r.StatusCode} {text}");
        return ImageId(repositoryAndTag) ?? throw new InvalidOperationException($"Imported image {repositoryAndTag} is not in the engine: {text}");
    }

    public string? ImageId(string reference)
    {
        using var r = _http.GetAsync($"images/{Uri.EscapeDataString(reference)}/json").GetAwaiter().GetResult();
        if (r.StatusCode == System.Net.HttpStatusCode.NotFound) return null;
        r.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(r.Content.ReadAsStringAsync().GetAwaiter().GetResult());
        return doc.RootElement.GetProperty("Id").GetString();
    }

    /// <summary>Every container the engine knows, running or not, as "id name image".</summary>
    public IReadOnlyList<string> AllContainers()
    {
        var list = _http.GetFromJsonAsync<JsonElement>("containers/json?all=true").GetAwaiter().GetResult();
        return list.EnumerateArray()
            .Select(c => $"{c.GetProperty("Id").GetString()} {string.Join(',', c.GetProperty("Names").EnumerateArray().Select(n => n.GetString()))} {c.GetProperty("Image").GetString()}")
            .ToList();
    }

    public void Dispose() => _http.Dispose();
}
