using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;

namespace VmTools.TestSupport;

/// <summary>
/// "Another host" for upload Locations: an HTTP listener on a second loopback address (127.0.0.2 routes on
/// Linux) that records the Authorization header of every request it receives, then forwards the request to
/// the real registry with the registry's own credential added — as a storage service that authorizes
/// uploads by their URL would. Tests assert on what arrived here, before anything was added.
/// </summary>
public sealed class RecordingProxy : IDisposable
{
    private static readonly HashSet<string> NotForwarded = new(StringComparer.OrdinalIgnoreCase) { "Host", "Authorization", "Connection", "Content-Length", "Transfer-Encoding", "Expect" };
    private readonly HttpListener _listener = new();
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { AllowAutoRedirect = false });
    private readonly AuthenticationHeaderValue? _upstreamAuthorization;
    private readonly ConcurrentQueue<ProxiedRequest> _requests = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public RecordingProxy(string address, AuthenticationHeaderValue? upstreamAuthorization)
    {
        _upstreamAuthorization = upstreamAuthorization;
        for (var attempt = 0; ; attempt++)
        {
            Port = Random.Shared.Next(20000, 60000);
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://{address}:{Port}/");
            try { _listener.Start(); break; }
            catch (HttpListenerException) when (attempt < 20) { _listener.Close(); }
        }

        Url = $"http://{address}:{Port}";
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }

    /// <summary>Where requests are forwarded (set once the registry it fronts has started).</summary>
    public Uri? Target { get; set; }

    public string Url { get; }

    public IReadOnlyList<ProxiedRequest> Requests => _requests.ToArray();

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        try { _loop.Wait(2000); } catch (AggregateException) { }
        _upstream.Dispose();
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

            _ = Task.Run(async () =>
            {
                try { await ForwardAsync(context); }
                catch (Exception) { context.Response.StatusCode = 502; }
                finally { context.Response.Close(); }
            });
        }
    }

    private async Task ForwardAsync(HttpListenerContext context)
    {
        var incoming = context.Request;
        _requests.Enqueue(new ProxiedRequest(incoming.HttpMethod, incoming.Url!.PathAndQuery, incoming.Headers["Authorization"]));
        using var request = new HttpRequestMessage(new HttpMethod(incoming.HttpMethod), new Uri(Target!, incoming.Url.PathAndQuery));
        if (incoming.HasEntityBody || incoming.ContentLength64 > 0) request.Content = new StreamContent(incoming.InputStream);
        foreach (var name in incoming.Headers.AllKeys.OfType<string>().Where(n => !NotForwarded.Contains(n)))
        {
            var value = incoming.Headers[name]!;
            if (!request.Headers.TryAddWithoutValidation(name, value)) request.Content?.Headers.TryAddWithoutValidation(name, value);
        }

        request.Headers.Authorization = _upstreamAuthorization;
        using var response = await _upstream.SendAsync(request);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            if (name is "Transfer-Encoding" or "Connection" or "Content-Length") continue;
            context.Response.Headers[name] = string.Join(",", values);
        }

        var body = await response.Content.ReadAsByteArrayAsync();
        context.Response.ContentLength64 = body.Length;
        await context.Response.OutputStream.WriteAsync(body);
    }
}

/// <summary>One request the proxy received, as it arrived.</summary>
public sealed record ProxiedRequest(string Method, string PathAndQuery, string? Authorization);
