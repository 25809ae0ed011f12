using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;

namespace VmTools.Core.Registry;

/// <summary>
/// The registry HTTP API (OCI distribution spec) for one registry host: manifests, blobs and
/// uploads, with authentication and the choice of scheme handled underneath.
/// </summary>
public sealed class RegistryClient
{
    private readonly RegistryTransport _transport;
    private readonly RegistryAuthenticator _auth;
    private readonly CredentialScope _credentialScope;
    private readonly RegistryClientOptions _options;
    private readonly bool _loopback;

    public RegistryClient(ImageReference anyReferenceOnRegistry, RegistryClientOptions options)
    {
        _options = options;
        Registry = anyReferenceOnRegistry.Registry;
        _loopback = anyReferenceOnRegistry.IsLoopback;
        _transport = RegistryTransport.For(anyReferenceOnRegistry.ApiHost, options);
        var credential = options.Credential ?? CredentialFiles.Find(anyReferenceOnRegistry);
        if (credential is not null) options.Verbose?.Invoke($"Registry credential for {Registry}: {credential}");
        _credentialScope = new CredentialScope(() => _transport.BaseUri!, options);
        _auth = new RegistryAuthenticator(_transport.Client, credential, _credentialScope);
    }

    public string Registry { get; }

    public RegistryClientOptions Options => _options;

    /// <summary>HEAD of a manifest: its digest, media type and size, or null when the tag or digest does not exist.</summary>
    public async Task<ManifestInfo?> HeadManifestAsync(string repository, string reference, CancellationToken ct)
    {
        using var response = await SendAsync(() => ManifestRequest(HttpMethod.Head, repository, reference), Scope(repository, "pull"), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        EnsureSuccess(response, repository + ":" + reference, "RegistryManifestNotFound");
        var digest = response.Headers.TryGetValues("Docker-Content-Digest", out var d) ? d.FirstOrDefault() : null;
        return new ManifestInfo(digest, response.Content.Headers.ContentType?.MediaType, response.Content.Headers.ContentLength);
    }

    /// <summary>GETs a manifest, refusing oversized bodies and verifying its digest.</summary>
    public async Task<ManifestDocument> GetManifestAsync(string repository, string reference, CancellationToken ct)
    {
        using var response = await SendAsync(() => ManifestRequest(HttpMethod.Get, repository, reference), Scope(repository, "pull"), ct).ConfigureAwait(false);
        var where = $"{Registry}/{repository}" + (reference.StartsWith("sha256:", StringComparison.Ordinal) ? "@" : ":") + reference;
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new VmToolsException("RegistryManifestNotFound", FailureKind.NotFound, $"No manifest '{where}' in the registry.") { Target = where };
        }

        EnsureSuccess(response, where, "RegistryManifestNotFound");
        var max = _options.MaxManifestBytes;
        if (response.Content.Headers.ContentLength is > 0 and var len && len > max) throw TooLarge(where, len, max);
        var bytes = await ReadCappedAsync(response.Content, max, where, ct).ConfigureAwait(false);
        var digest = ContentDigest.Of(bytes).ToString();
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && reference != digest)
        {
            throw new VmToolsException("RegistryDigestMismatch", FailureKind.InvalidData, $"Manifest '{where}' has digest {digest}, not the one asked for.") { Target = where };
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        // Some registries label OCI documents loosely; the document's own mediaType settles it.
        var declared = ManifestDocument.DeclaredMediaType(bytes);
        if (declared is not null) mediaType = declared;
        if (!MediaTypes.IsIndex(mediaType) && !MediaTypes.IsManifest(mediaType))
        {
            throw new VmToolsException("RegistryUnsupportedMediaType", FailureKind.InvalidData,
                $"Manifest '{where}' has media type '{mediaType}', which is neither an image manifest nor an index.") { Target = where };
        }

        return new ManifestDocument(digest, mediaType!, bytes);
    }

    public async Task<string> PutManifestAsync(string repository, string reference, byte[] body, string mediaType, CancellationToken ct)
    {
        using var response = await SendAsync(() =>
        {
            var r = new HttpRequestMessage(HttpMethod.Put, Url($"/v2/{repository}/manifests/{reference}"));
            r.Content = new ByteArrayContent(body);
            r.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return r;
        }, Scope(repository, "pull,push"), ct).ConfigureAwait(false);
        EnsureSuccess(response, $"{Registry}/{repository}:{reference}", "RegistryPushFailed");
        return ContentDigest.Of(body).ToString();
    }

    public async Task<bool> BlobExistsAsync(string repository, string digest, CancellationToken ct)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Head, Url($"/v2/{repository}/blobs/{digest}")), Scope(repository, "pull"), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        EnsureSuccess(response, $"{Registry}/{repository}@{digest}", "RegistryBlobNotFound");
        return true;
    }

    /// <summary>Asks the registry to link a blob it already holds in another repository; false when it wants an upload instead.</summary>
    public async Task<bool> TryMountBlobAsync(string repository, string digest, string fromRepository, CancellationToken ct)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post,
            Url($"/v2/{repository}/blobs/uploads/?mount={Uri.EscapeDataString(digest)}&from={Uri.EscapeDataString(fromRepository)}")),
            Scope(repository, "pull,push") + " " + Scope(fromRepository, "pull"), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Created) return true;
        if (response.StatusCode == HttpStatusCode.Accepted)
        {
            // The registry opened an upload session instead; cancel it so it does not linger.
            if (response.Headers.Location is { } loc)
            {
                using var _ = await SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, Resolve(loc)), Scope(repository, "pull,push"), ct).ConfigureAwait(false);
            }

            return false;
        }

        return false;
    }

    /// <summary>Uploads a blob in one streamed PATCH then a closing PUT with its digest (a monolithic POST body is ignored by some registries).</summary>
    public async Task UploadBlobAsync(string repository, string digest, long size, Func<Stream, CancellationToken, Task> writeContent, CancellationToken ct)
    {
        var scope = Scope(repository, "pull,push");
        Uri location;
        using (var start = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post, Url($"/v2/{repository}/blobs/uploads/")), scope, ct).ConfigureAwait(false))
        {
            EnsureSuccess(start, $"{Registry}/{repository}", "RegistryPushFailed");
            location = Resolve(start.Headers.Location ?? throw Protocol("the upload start had no Location"));
        }

        using (var patch = new HttpRequestMessage(HttpMethod.Patch, location))
        {
            patch.Content = new StreamingContent(writeContent, size);
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            patch.Headers.Authorization = AuthorizationFor(location, scope);
            using var response = await Send(patch, ct).ConfigureAwait(false);
            EnsureSuccess(response, $"{Registry}/{repository}@{digest}", "RegistryPushFailed");
            location = Resolve(response.Headers.Location ?? location);
        }

        var separator = location.Query.Length > 0 ? "&" : "?";
        var done = new Uri(location + separator + "digest=" + Uri.EscapeDataString(digest));
        using var put = await SendAsync(() => new HttpRequestMessage(HttpMethod.Put, done) { Content = new ByteArrayContent(Array.Empty<byte>()) }, scope, ct).ConfigureAwait(false);
        if (put.StatusCode == HttpStatusCode.BadRequest)
        {
            throw new VmToolsException("RegistryDigestMismatch", FailureKind.InvalidData, $"The registry refused blob {digest}: what was sent does not match its digest (was the file changed during the push?).") { Target = digest };
        }

        EnsureSuccess(put, $"{Registry}/{repository}@{digest}", "RegistryPushFailed");
    }

    /// <summary>GETs a blob or a byte range of it; the caller owns (and disposes) the response.</summary>
    public async Task<HttpResponseMessage> GetBlobAsync(string repository, string digest, long? from, long? to, CancellationToken ct)
    {
        var response = await SendAsync(() =>
        {
            var r = new HttpRequestMessage(HttpMethod.Get, Url($"/v2/{repository}/blobs/{digest}"));
            if (from is not null) r.Headers.Range = new RangeHeaderValue(from, to);
            return r;
        }, Scope(repository, "pull"), ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            response.Dispose();
            throw new VmToolsException("RegistryBlobNotFound", FailureKind.NotFound, $"Blob {digest} is not in {Registry}/{repository}.") { Target = digest };
        }

        try
        {
            EnsureSuccess(response, $"{Registry}/{repository}@{digest}", "RegistryBlobNotFound");
        }
        catch
        {
            response.Dispose();
            throw;
        }

        return response;
    }

    private static string Scope(string repository, string actions) => $"repository:{repository}:{actions}";

    private HttpRequestMessage ManifestRequest(HttpMethod method, string repository, string reference)
    {
        var r = new HttpRequestMessage(method, Url($"/v2/{repository}/manifests/{reference}"));
        foreach (var t in MediaTypes.ManifestAccept) r.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(t));
        return r;
    }

    private async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> make, string scope, CancellationToken ct, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        await EnsureBaseUriAsync(ct).ConfigureAwait(false);
        for (var attempt = 0; ; attempt++)
        {
            var request = make();
            if (request.RequestUri is { IsAbsoluteUri: false } rel) request.RequestUri = new Uri(_transport.BaseUri!, rel);
            request.Headers.Authorization = AuthorizationFor(request.RequestUri!, scope);
            var response = await Send(request, ct, completion).ConfigureAwait(false);
            var registryOrigin = _credentialScope.IsRegistryOrigin(request.RequestUri!);
            request.Dispose();
            // Only the registry's own 401 is answered with credentials; another host's challenge is its own business.
            if (response.StatusCode != HttpStatusCode.Unauthorized || attempt > 2 || !registryOrigin) return response;
            var retry = await _auth.RespondAsync(response, scope, ct).ConfigureAwait(false);
            if (!retry) return response;
            response.Dispose();
        }
    }

    /// <summary>The registry's Authorization header, for its own origin only: an upload Location on another host gets none.</summary>
    private AuthenticationHeaderValue? AuthorizationFor(Uri uri, string scope)
        => _credentialScope.IsRegistryOrigin(uri) ? _auth.HeaderFor(scope) : null;

    private async Task<HttpResponseMessage> Send(HttpRequestMessage request, CancellationToken ct, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await _transport.Client.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new VmToolsException("RegistryTimeout", FailureKind.ConnectionFailed, $"The registry {Registry} did not answer in time.", e) { Target = Registry };
        }
    }

    /// <summary>
    /// HTTPS first. Plain HTTP only for a loopback registry or one the caller named insecure, and only when
    /// HTTPS does not answer at all; a certificate we do not trust is an error, never a downgrade.
    /// </summary>
    private async Task EnsureBaseUriAsync(CancellationToken ct)
    {
        if (_transport.BaseUri is not null) return;
        var https = new Uri($"https://{_transport.Registry}");
        if (!_loopback && !_options.Insecure)
        {
            _transport.BaseUri = https;
            return;
        }

        try
        {
            using var probe = new HttpRequestMessage(HttpMethod.Get, new Uri(https, "/v2/"));
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(10));
            using var _ = await _transport.Client.SendAsync(probe, cts.Token).ConfigureAwait(false);
            _transport.BaseUri = https;
        }
        catch (HttpRequestException e) when (_transport.CertificateRejected && !_options.Insecure)
        {
            throw Unreachable(e);
        }
        catch (HttpRequestException)
        {
            _options.Verbose?.Invoke($"{_transport.Registry} does not speak HTTPS; using plain HTTP (loopback or named insecure).");
            _transport.BaseUri = new Uri($"http://{_transport.Registry}");
        }
    }

    private VmToolsException Unreachable(HttpRequestException e)
    {
        if (_transport.CertificateRejected || e.InnerException is AuthenticationException)
        {
            return new VmToolsException("RegistryTlsUntrusted", FailureKind.SecurityError,
                $"The TLS certificate of {Registry} is not trusted. Put its CA in /etc/containers/certs.d/{Registry}/ca.crt (or a folder named in VMTOOLS_CERTS_D), or name the registry insecure.", e) { Target = Registry };
        }

        return new VmToolsException("RegistryUnreachable", FailureKind.ConnectionFailed, $"Cannot reach the registry {Registry}: {e.Message}", e) { Target = Registry };
    }

    private void EnsureSuccess(HttpResponseMessage response, string what, string notFoundId)
    {
        if (response.IsSuccessStatusCode) return;
        var code = (int)response.StatusCode;
        if (response.StatusCode == HttpStatusCode.Unauthorized && _auth.Withheld is { } withheld) throw withheld;
        throw response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => new VmToolsException("RegistryUnauthorized", FailureKind.AuthenticationFailed,
                $"The registry refused access to {what} (401){(_auth.HasCredential ? ": the credential was not accepted" : ": no credential was found; pass -Credential or log in with podman/docker")}.") { Target = what },
            HttpStatusCode.Forbidden => new VmToolsException("RegistryForbidden", FailureKind.PermissionDenied, $"The registry denied {what} (403).") { Target = what },
            HttpStatusCode.NotFound => new VmToolsException(notFoundId, FailureKind.NotFound, $"{what} was not found (404).") { Target = what },
            HttpStatusCode.TooManyRequests => new VmToolsException("RegistryRateLimited", FailureKind.LimitsExceeded, $"The registry is rate limiting requests for {what} (429).") { Target = what },
            _ => new VmToolsException("RegistryRequestFailed", FailureKind.InvalidOperation, $"The registry answered {code} {response.ReasonPhrase} for {what}.") { Target = what },
        };
    }

    private static async Task<byte[]> ReadCappedAsync(HttpContent content, long max, string where, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > max) throw TooLarge(where, buffer.Length + n, max);
            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    private static VmToolsException TooLarge(string where, long size, long max)
        => new("RegistryManifestTooLarge", FailureKind.LimitsExceeded, $"Manifest '{where}' is larger than {max} bytes ({size}+); refusing it.") { Target = where };

    private static VmToolsException Protocol(string what)
        => new("RegistryProtocolError", FailureKind.InvalidData, $"The registry broke the distribution protocol: {what}.");

    private Uri Url(string pathAndQuery) => new(pathAndQuery, UriKind.Relative);

    private Uri Resolve(Uri location) => location.IsAbsoluteUri ? location : new Uri(_transport.BaseUri!, location);
}

/// <summary>What a manifest HEAD tells: enough to decide a cache hit without a body.</summary>
public sealed record ManifestInfo(string? Digest, string? MediaType, long? Size);
