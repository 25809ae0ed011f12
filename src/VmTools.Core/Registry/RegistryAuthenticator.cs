using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace VmTools.Core.Registry;

/// <summary>
/// Answers a registry's 401 challenge: Basic with the credential, or Bearer by fetching a token from the
/// realm for the scope asked (anonymously when there is no credential, or when <see cref="CredentialScope"/>
/// keeps it from that realm). Tokens are cached per scope. Nothing here ever writes a secret or token to a message.
/// </summary>
internal sealed class RegistryAuthenticator
{
    private readonly ConcurrentDictionary<string, AuthenticationHeaderValue> _byScope = new();
    private readonly RegistryCredential? _credential;
    private readonly HttpClient _http;
    private readonly CredentialScope _scope;
    private AuthenticationHeaderValue? _basic;

    public RegistryAuthenticator(HttpClient http, RegistryCredential? credential, CredentialScope scope)
    {
        _http = http;
        _credential = credential;
        _scope = scope;
    }

    public bool HasCredential => _credential is not null;

    /// <summary>Set when a credential was kept from a token realm: the error to raise if the anonymous token is not enough.</summary>
    public VmToolsException? Withheld { get; private set; }

    public AuthenticationHeaderValue? HeaderFor(string scope) => _byScope.TryGetValue(scope, out var h) ? h : _basic;

    /// <summary>Handles a 401; returns false when there is nothing more to try.</summary>
    public async Task<bool> RespondAsync(HttpResponseMessage challenge, string scope, CancellationToken ct)
    {
        foreach (var header in challenge.Headers.WwwAuthenticate)
        {
            if (header.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
            {
                if (_credential is null || _basic is not null) return false;
                _scope.EnsureBasicAllowed();
                _basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_credential.UserName + ":" + _credential.Password)));
                return true;
            }

            if (header.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            {
                if (_byScope.ContainsKey(scope)) return false; // token was refused for this scope already
                var token = await FetchTokenAsync(ParseParameters(header.Parameter ?? string.Empty), scope, ct).ConfigureAwait(false);
                if (token is null) return false;
                _byScope[scope] = new AuthenticationHeaderValue("Bearer", token);
                return true;
            }
        }

        return false;
    }

    private async Task<string?> FetchTokenAsync(IReadOnlyDictionary<string, string> challenge, string scope, CancellationToken ct)
    {
        if (!challenge.TryGetValue("realm", out var realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri)) return null;
        var query = new List<string>();
        if (challenge.TryGetValue("service", out var service)) query.Add("service=" + Uri.EscapeDataString(service));
        var wanted = challenge.TryGetValue("scope", out var s) ? s : scope;
        foreach (var one in wanted.Split(' ', StringSplitOptions.RemoveEmptyEntries)) query.Add("scope=" + Uri.EscapeDataString(one));
        var uri = new UriBuilder(realmUri) { Query = string.Join('&', query) }.Uri;
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        var withheld = _credential is null ? null : _scope.WithholdFrom(realmUri);
        if (withheld is not null) Withheld = withheld;
        if (_credential is not null && withheld is null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_credential.UserName + ":" + _credential.Password)));
        }

        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            if (withheld is not null) throw withheld;
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw new VmToolsException("RegistryAuthFailed", FailureKind.AuthenticationFailed, $"The token service at {realmUri.Host} answered {(int)response.StatusCode}.") { Target = realmUri.Host };
        }

        using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false));
        foreach (var name in new[] { "token", "access_token" })
        {
            if (doc.RootElement.TryGetProperty(name, out var t) && t.GetString() is { Length: > 0 } value) return value;
        }

        return null;
    }

    /// <summary>Parses <c>realm="...",service="...",scope="..."</c> (quoted values may hold commas).</summary>
    internal static IReadOnlyDictionary<string, string> ParseParameters(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || text[i] == ' ')) i++;
            var eq = text.IndexOf('=', i);
            if (eq < 0) break;
            var key = text[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < text.Length && text[i] == '"')
            {
                var end = text.IndexOf('"', i + 1);
                if (end < 0) end = text.Length;
                value = text[(i + 1)..end];
                i = end + 1;
            }
            else
            {
                var end = text.IndexOf(',', i);
                if (end < 0) end = text.Length;
                value = text[i..end].Trim();
                i = end;
            }

            result[key] = value;
        }

        return result;
    }
}
