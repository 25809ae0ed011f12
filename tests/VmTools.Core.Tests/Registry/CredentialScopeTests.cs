using VmTools.Core.Registry;

namespace VmTools.Core.Tests.Registry;

/// <summary>The rule for where a registry credential may go, case by case; the real token server proves it end to end in TokenRealmTests.</summary>
public sealed class CredentialScopeTests
{
    private static CredentialScope For(string registryBase, bool allowHttp = false, params string[] trusted)
        => new(() => new Uri(registryBase), new RegistryClientOptions { AllowCredentialsOverHttp = allowHttp, TrustedTokenRealms = trusted });

    [Theory]
    [InlineData("registry-1.docker.io", "auth.docker.io", true)]
    [InlineData("registry.example.com", "auth.example.com", true)]
    [InlineData("registry.example.com", "example.com", true)]
    [InlineData("registry.example.com", "a.b.example.com", true)]
    [InlineData("quay.io", "quay.io", true)]
    [InlineData("quay.io", "auth.io", false)]
    [InlineData("registry.example.com", "example.com.evil.net", false)]
    [InlineData("registry.example.com", "evilexample.com", false)]
    [InlineData("127.0.0.1", "127.0.0.1", true)]
    [InlineData("127.0.0.1", "127.0.0.2", false)]
    [InlineData("10.0.0.1", "1.0.0.1", false)]
    [InlineData("localhost", "evil.localhost", false)]
    public void RegistrableDomain_IsTheSimpleDocumentedRule(string registry, string realm, bool same)
        => Assert.Equal(same, CredentialScope.SameRegistrableDomain(registry, realm));

    [Theory]
    [InlineData("https://registry.example.com", "https://auth.example.com/token", null)]
    [InlineData("https://registry-1.docker.io", "https://auth.docker.io/token", null)]
    [InlineData("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", null)]
    [InlineData("https://registry.example.com", "http://registry.example.com/token", "RegistryTokenRealmUntrusted")]
    [InlineData("https://registry.example.com", "https://tokens.elsewhere.net/token", "RegistryTokenRealmUntrusted")]
    [InlineData("http://127.0.0.1:5000", "http://127.0.0.2:5001/token", "RegistryTokenRealmUntrusted")]
    [InlineData("http://registry.lan:5000", "http://registry.lan:5001/token", "RegistryCredentialsOverHttp")]
    [InlineData("https://registry.example.com", "ftp://registry.example.com/token", "RegistryTokenRealmUntrusted")]
    public void Realm_GetsTheCredentialOnlyWhereItBelongs(string registry, string realm, string? withheldAs)
        => Assert.Equal(withheldAs, For(registry).WithholdFrom(new Uri(realm))?.ErrorId);

    [Fact]
    public void Realm_OnAnotherHost_GetsTheCredentialOnceTrusted_AndTheErrorNamesHowToTrustIt()
    {
        var realm = new Uri("https://tokens.elsewhere.net/token");
        var refused = For("https://registry.example.com").WithholdFrom(realm)!;
        Assert.Equal("tokens.elsewhere.net", refused.Target);
        Assert.Contains("-TrustedTokenRealm tokens.elsewhere.net", refused.Message);
        Assert.Null(For("https://registry.example.com", false, "TOKENS.elsewhere.net").WithholdFrom(realm));
    }

    [Fact]
    public void PlainHttp_OffLoopback_NeedsTheOptIn()
    {
        var ex = Assert.Throws<VmToolsException>(() => For("http://registry.lan:5000").EnsureBasicAllowed());
        Assert.Equal("RegistryCredentialsOverHttp", ex.ErrorId);
        For("http://registry.lan:5000", allowHttp: true).EnsureBasicAllowed();
        For("http://127.0.0.1:5000").EnsureBasicAllowed();
        For("https://registry.lan").EnsureBasicAllowed();
        Assert.Null(For("http://registry.lan:5000", allowHttp: true).WithholdFrom(new Uri("http://registry.lan:5001/token")));
        // The opt-in is about plain HTTP to the registry the user named, never an https registry's http realm.
        Assert.Equal("RegistryTokenRealmUntrusted", For("https://registry.lan", allowHttp: true).WithholdFrom(new Uri("http://registry.lan/token"))?.ErrorId);
    }

    [Theory]
    [InlineData("https://r.example.com/v2/x/blobs/uploads/1", true)]
    [InlineData("https://R.EXAMPLE.COM:443/v2/x", true)]
    [InlineData("https://storage.example.com/upload/1", false)]
    [InlineData("http://r.example.com/v2/x", false)]
    [InlineData("https://r.example.com:8443/v2/x", false)]
    public void Authorization_GoesOnlyToTheRegistryOrigin(string uri, bool sent)
        => Assert.Equal(sent, For("https://r.example.com").IsRegistryOrigin(new Uri(uri)));
}
