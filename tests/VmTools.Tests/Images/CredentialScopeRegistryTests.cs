using System.Net.Http.Headers;
using System.Text;
using VmTools.TestSupport;

namespace VmTools.Tests.Images;

/// <summary>
/// Where the credential goes, proved against a real docker-registry and a token service that records the
/// headers it received: another loopback address (127.0.0.2) stands for another host.
/// </summary>
public sealed class CredentialScopeRegistryTests
{
    private const string WithCredential = "$c = [pscredential]::new($args[2], [System.Net.NetworkCredential]::new('', $args[3]).SecurePassword); ";

    private static string Push(string extra = "") => WithCredential + "Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag t -Credential $c " + extra;

    private static bool IsBasic(string? authorization) => authorization?.StartsWith("Basic ", StringComparison.Ordinal) == true;

    [Fact]
    public void RepositoryWithUserInfo_IsRefused_AndThePasswordIsInNoStreamNorTarget()
    {
        using var s = new CacheSession();
        var r = s.Ps.Run("Get-Qcow2Cache -Repository 'https://ci:hunter2-Pa55@127.0.0.1:1/org/img' -Tag t -Verbose");
        var error = Assert.Single(r.Errors);
        Assert.Equal("ImageReferenceInvalid,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.DoesNotContain("hunter2", r.AllText);
        Assert.DoesNotContain("hunter2", error.TargetObject?.ToString());
        Assert.DoesNotContain("hunter2", error.ToString() + error.Exception + error.ErrorDetails?.Message);
    }

    [Fact]
    public void TokenRealmOnTheRegistrysOwnLoopbackAddress_GetsTheCredential()
    {
        using var registry = RegistryServer.StartWithTokenAuth("127.0.0.1", tls: false);
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("a.qcow2"), 1, seed: 60);
        s.Ps.Invoke(Push(), disk, $"{registry.Host}/scope/own", RegistryServer.User, RegistryServer.Password);
        Assert.Contains(registry.Tokens!.Requests, r => IsBasic(r.Authorization));
    }

    [Fact]
    public void TokenRealmOnAnotherHost_GetsNoCredential_UntilTrusted()
    {
        using var registry = RegistryServer.StartWithTokenAuth("127.0.0.2", tls: false);
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("b.qcow2"), 1, seed: 61);
        var repo = $"{registry.Host}/scope/elsewhere";
        var error = s.Ps.ExpectError(Push(), disk, repo, RegistryServer.User, RegistryServer.Password);
        Assert.Equal("RegistryTokenRealmUntrusted,VmTools.Commands.SaveQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Equal("127.0.0.2", error.TargetObject);
        Assert.Contains("-TrustedTokenRealm 127.0.0.2", error.Exception.Message);
        Assert.NotEmpty(registry.Tokens!.Requests); // an anonymous token was asked for ...
        Assert.All(registry.Tokens.Requests, r => Assert.Null(r.Authorization)); // ... and no credential went with it

        s.Ps.Invoke(Push("-TrustedTokenRealm 127.0.0.2"), disk, repo, RegistryServer.User, RegistryServer.Password);
        Assert.Contains(registry.Tokens.Requests, r => IsBasic(r.Authorization));
    }

    [Fact]
    public void TokenRealmTrustedThroughTheEnvironment_GetsTheCredential()
    {
        using var registry = RegistryServer.StartWithTokenAuth("127.0.0.2", tls: false);
        using var s = new CacheSession(new Dictionary<string, string?> { ["VMTOOLS_TRUSTED_TOKEN_REALMS"] = "auth.example.com, 127.0.0.2" });
        var disk = TestDisks.CreateQcow2(s.Work.Combine("e.qcow2"), 1, seed: 64);
        s.Ps.Invoke(Push(), disk, $"{registry.Host}/scope/env", RegistryServer.User, RegistryServer.Password);
        Assert.Contains(registry.Tokens!.Requests, r => IsBasic(r.Authorization));
    }

    [Fact]
    public void PlainHttpTokenRealm_OfAnHttpsRegistry_GetsNoCredential()
    {
        using var registry = RegistryServer.StartWithTokenAuth("127.0.0.1", tls: true);
        using var s = new CacheSession(new Dictionary<string, string?> { ["VMTOOLS_CERTS_D"] = registry.CertsDirectory });
        var disk = TestDisks.CreateQcow2(s.Work.Combine("c.qcow2"), 1, seed: 62);
        var error = s.Ps.ExpectError(Push(), disk, $"{registry.Host}/scope/http-realm", RegistryServer.User, RegistryServer.Password);
        Assert.Equal("RegistryTokenRealmUntrusted,VmTools.Commands.SaveQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Contains("plain HTTP", error.Exception.Message);
        Assert.NotEmpty(registry.Tokens!.Requests);
        Assert.All(registry.Tokens.Requests, r => Assert.Null(r.Authorization));
    }

    [Fact]
    public void UploadLocationOnAnotherHost_GetsNoAuthorizationHeader()
    {
        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(RegistryServer.User + ":" + RegistryServer.Password)));
        using var storage = new RecordingProxy("127.0.0.2", upstreamAuthorization: basic);
        using var registry = RegistryServer.StartWithUploadsElsewhere(storage.Url);
        storage.Target = new Uri($"http://{registry.Host}");
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("d.qcow2"), 2, seed: 63);
        var save = s.Ps.Run(Push(), disk, $"{registry.Host}/scope/uploads", RegistryServer.User, RegistryServer.Password);
        Assert.Empty(save.Errors);
        Assert.Contains(storage.Requests, r => r.Method == "PATCH");
        Assert.Contains(storage.Requests, r => r.Method == "PUT");
        Assert.All(storage.Requests, r => Assert.Null(r.Authorization));
    }
}
