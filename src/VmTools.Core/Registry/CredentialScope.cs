using System.Net;

namespace VmTools.Core.Registry;

/// <summary>
/// Where a registry credential (the Basic password, and the tokens it buys) may go: the one home of that
/// rule, asked by the authenticator before a token request and by the client before every request.
/// <list type="bullet">
/// <item>Requests: the Authorization header goes only to the registry's own origin (scheme, host and port);
/// an upload Location on another origin gets none, as docker and containerd do.</item>
/// <item>Token realms: credentials go to a realm on the registry's own host or registrable domain (see
/// <see cref="SameRegistrableDomain"/>), or to a realm host the user trusts (<c>-TrustedTokenRealm</c>,
/// <c>VMTOOLS_TRUSTED_TOKEN_REALMS</c>, Docker Hub's auth.docker.io built in); any other realm is asked for an
/// anonymous token.</item>
/// <item>Plain HTTP: credentials cross plain HTTP only when the user chose plain HTTP for the registry (a
/// loopback registry, or <c>-Insecure</c>), and to a non-loopback host only with
/// <c>-AllowCredentialsOverHttp</c>; an https registry's http realm never gets them.</item>
/// </list>
/// </summary>
internal sealed class CredentialScope
{
    /// <summary>Realm hosts trusted for a registry host without asking: Docker Hub's token service.</summary>
    private static readonly IReadOnlyDictionary<string, string> BuiltIn = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["registry-1.docker.io"] = "auth.docker.io",
    };

    private readonly Func<Uri> _registryBase;
    private readonly RegistryClientOptions _options;

    public CredentialScope(Func<Uri> registryBase, RegistryClientOptions options)
    {
        _registryBase = registryBase;
        _options = options;
    }

    private Uri Registry => _registryBase();

    /// <summary>Same scheme, host and port as the registry: the only place its Authorization header is sent.</summary>
    public bool IsRegistryOrigin(Uri uri)
        => uri.IsAbsoluteUri && Uri.Compare(uri, Registry, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    /// <summary>
    /// Throws <c>RegistryCredentialsOverHttp</c> when the registry asks for Basic credentials over plain HTTP
    /// on a non-loopback host the user did not opt in for.
    /// </summary>
    public void EnsureBasicAllowed()
    {
        if (!MayCrossPlainHttp(Registry))
        {
            throw new VmToolsException("RegistryCredentialsOverHttp", FailureKind.SecurityError,
                $"The registry {Registry.Authority} asks for a password over plain HTTP, where anyone on the path can read it. "
                + "-Insecure allows plain HTTP, not passwords over it: use HTTPS, or add -AllowCredentialsOverHttp if this network is yours.") { Target = Registry.Authority };
        }
    }

    /// <summary>Null when the credential may go to <paramref name="realm"/>; else why not, as the error to raise if an anonymous token is refused.</summary>
    public VmToolsException? WithholdFrom(Uri realm)
    {
        if (realm.Scheme == Uri.UriSchemeHttp)
        {
            if (Registry.Scheme != Uri.UriSchemeHttp)
            {
                return Untrusted(realm, $"the token service {realm.GetLeftPart(UriPartial.Path)} is plain HTTP while the registry {Registry.Authority} is HTTPS; a password never leaves TLS");
            }

            if (!MayCrossPlainHttp(realm))
            {
                return new VmToolsException("RegistryCredentialsOverHttp", FailureKind.SecurityError,
                    $"The registry {Registry.Authority} sends the password to the plain HTTP token service {realm.Host}, where anyone on the path can read it. "
                    + "Use HTTPS, or add -AllowCredentialsOverHttp if this network is yours.") { Target = realm.Host };
            }
        }
        else if (realm.Scheme != Uri.UriSchemeHttps)
        {
            return Untrusted(realm, $"the token service {realm.Host} is not an http(s) address");
        }

        if (SameRegistrableDomain(Registry.Host, realm.Host) || IsTrusted(realm.Host)) return null;
        return Untrusted(realm, $"the token service {realm.Host} is outside {Registry.Host}'s domain and not trusted; "
            + $"if it is the registry's own, pass -TrustedTokenRealm {realm.Host} (or add it to VMTOOLS_TRUSTED_TOKEN_REALMS)");
    }

    private VmToolsException Untrusted(Uri realm, string why)
        => new("RegistryTokenRealmUntrusted", FailureKind.SecurityError,
            $"The registry {Registry.Authority} refused the anonymous token, and the credential was not sent: {why}.") { Target = realm.Host };

    private bool IsTrusted(string realmHost)
        => _options.TrustedTokenRealms.Any(t => string.Equals(t.Trim(), realmHost, StringComparison.OrdinalIgnoreCase))
           || (BuiltIn.TryGetValue(Registry.Host, out var builtIn) && string.Equals(builtIn, realmHost, StringComparison.OrdinalIgnoreCase));

    /// <summary>Plain HTTP carries a credential only where the user chose it for the registry, and off loopback only when opted in.</summary>
    private bool MayCrossPlainHttp(Uri target)
        => target.Scheme != Uri.UriSchemeHttp
           || (Registry.Scheme == Uri.UriSchemeHttp && (IsLoopback(target.Host) || _options.AllowCredentialsOverHttp));

    /// <summary>
    /// The simple rule VmTools uses for "the registry's own domain": the same host (for an IP address, the
    /// same address, any port), or a realm host ending in "." + the registry host's parent domain when that
    /// parent has at least two labels (registry-1.docker.io → *.docker.io; registry.example.com →
    /// *.example.com; quay.io → quay.io only). It knows no public-suffix list: a registry at
    /// reg.co.uk would accept *.co.uk, so such hosts should name their realm with -TrustedTokenRealm instead.
    /// </summary>
    internal static bool SameRegistrableDomain(string registryHost, string realmHost)
    {
        var registry = registryHost.Trim('[', ']').TrimEnd('.').ToLowerInvariant();
        var realm = realmHost.Trim('[', ']').TrimEnd('.').ToLowerInvariant();
        if (registry == realm) return true;
        if (IPAddress.TryParse(registry, out _) || IPAddress.TryParse(realm, out _)) return false;
        var dot = registry.IndexOf('.');
        if (dot < 0) return false;
        var parent = registry[(dot + 1)..];
        return parent.Contains('.') && (realm == parent || realm.EndsWith("." + parent, StringComparison.Ordinal));
    }

    private static bool IsLoopback(string host)
        => host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
           || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
