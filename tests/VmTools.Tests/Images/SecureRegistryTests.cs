using System.Management.Automation;
using System.Text;
using VmTools.TestSupport;

namespace VmTools.Tests.Images;

public sealed class SecureRegistryFixture : IDisposable
{
    private RegistryServer? _server;

    public RegistryServer Server => _server ??= RegistryServer.StartTlsWithAuth();

    public void Dispose() => _server?.Dispose();
}

/// <summary>A TLS registry with a private CA and htpasswd auth: trust comes from certs.d, access from credentials.</summary>
public sealed class SecureRegistryTests : IClassFixture<SecureRegistryFixture>
{
    private readonly SecureRegistryFixture _registry;

    public SecureRegistryTests(SecureRegistryFixture registry) => _registry = registry;

    private CacheSession Session(bool trust = true, string? authFile = null) => new(new Dictionary<string, string?>
    {
        ["VMTOOLS_CERTS_D"] = trust ? _registry.Server.CertsDirectory : null,
        ["REGISTRY_AUTH_FILE"] = authFile,
        ["HOME"] = Path.GetTempPath(),
    });

    private string Repo(string name) => $"{_registry.Server.Host}/secure/{name}{Guid.NewGuid():N}"[..^20];

    private const string WithCredential = "$c = [pscredential]::new($args[2], [System.Net.NetworkCredential]::new('', $args[3]).SecurePassword); ";

    [Fact]
    public void SaveAndGet_WithCredentialOverTrustedTls_RoundTrip_AndNoStreamShowsThePassword()
    {
        using var s = Session();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("s.qcow2"), 9, seed: 20);
        var repo = Repo("roundtrip");
        var save = s.Ps.Run(WithCredential + "Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag s -Credential $c -Verbose", disk, repo, RegistryServer.User, RegistryServer.Password);
        Assert.Empty(save.Errors);
        using var fresh = Session();
        var get = fresh.Ps.Run(WithCredential + "Get-Qcow2Cache -Repository $args[1] -Tag s -Credential $c -Verbose", disk, repo, RegistryServer.User, RegistryServer.Password);
        Assert.Empty(get.Errors);
        Assert.Equal("Pulled", get.Output.Single().Properties["Status"].Value.ToString());
        Assert.True(TestDisks.SameBytes(disk, (string)get.Output.Single().Properties["Path"].Value));
        Assert.DoesNotContain(RegistryServer.Password, save.AllText + get.AllText);
        Assert.Contains(RegistryServer.User, get.AllText); // the verbose stream names who, never the secret
    }

    [Fact]
    public void Get_WithoutCredential_IsUnauthorized()
    {
        using var s = Session();
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag x", Repo("noauth"));
        Assert.Equal("RegistryUnauthorized,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.AuthenticationError, error.CategoryInfo.Category);
    }

    [Fact]
    public void Get_WrongPassword_IsUnauthorized_AndTheWrongPasswordIsNotShown()
    {
        using var s = Session();
        const string wrong = "wrong-Pa55-word-xyz";
        var error = s.Ps.ExpectError(WithCredential + "Get-Qcow2Cache -Repository $args[1] -Tag x -Credential $c", null, Repo("wrong"), RegistryServer.User, wrong);
        Assert.Equal("RegistryUnauthorized,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.DoesNotContain(wrong, error.ToString() + error.Exception);
    }

    [Fact]
    public void Test_UsesContainersAuthFile()
    {
        using var s0 = Session();
        var authFile = s0.Work.Combine("auth.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes(RegistryServer.User + ":" + RegistryServer.Password));
        File.WriteAllText(authFile, "{\"auths\":{\"" + _registry.Server.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        using var s = Session(authFile: authFile);
        var disk = TestDisks.CreateQcow2(s.Work.Combine("a.qcow2"), 1, seed: 21);
        var repo = Repo("authfile");
        s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag a", disk, repo);
        Assert.Equal(true, s.Ps.Invoke("Test-Qcow2Cache -Repository $args[0] -Tag a", repo).Single().BaseObject);
    }

    [Fact]
    public void Save_WithADockerCredHelperOnPath_UsesItsLogin_AndNoStreamShowsTheSecret()
    {
        using var s0 = Session();
        var bin = s0.Work.Combine("bin");
        Directory.CreateDirectory(bin);
        var helper = Path.Combine(bin, "docker-credential-vmtools-test");
        File.WriteAllText(helper, "#!/bin/sh\nread -r server\necho \"$1 $server\" >> \"$0.calls\"\n"
            + $"printf '{{\"ServerURL\":\"%s\",\"Username\":\"{RegistryServer.User}\",\"Secret\":\"{RegistryServer.Password}\"}}' \"$server\"\n");
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = s0.Work.Combine("config.json");
        File.WriteAllText(config, "{\"credHelpers\":{\"" + _registry.Server.Host + "\":\"vmtools-test\"}}");
        var path = Environment.GetEnvironmentVariable("PATH");
        using var s = Session(authFile: config);
        try
        {
            s.Ps.SetEnv("PATH", bin + ":" + path);
            var disk = TestDisks.CreateQcow2(s.Work.Combine("h.qcow2"), 1, seed: 22);
            var repo = Repo("credhelper");
            var r = s.Ps.Run("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag h -Verbose", disk, repo);
            Assert.Empty(r.Errors);
            Assert.DoesNotContain(RegistryServer.Password, r.AllText);
            Assert.Contains("docker-credential-vmtools-test", r.AllText); // the verbose line names where the login came from
            Assert.Equal("get " + _registry.Server.Host + "\n", File.ReadAllText(helper + ".calls")[..(_registry.Server.Host.Length + 5)]);
            Assert.Equal(true, s.Ps.Invoke("Test-Qcow2Cache -Repository $args[0] -Tag h", repo).Single().BaseObject);
        }
        finally
        {
            s.Ps.SetEnv("PATH", path);
        }
    }

    [Fact]
    public void Get_UntrustedCertificate_FailsAsTlsUntrusted_NeverDowngradesToHttp()
    {
        using var s = Session(trust: false);
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag x", Repo("untrusted"));
        Assert.Equal("RegistryTlsUntrusted,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, error.CategoryInfo.Category);
    }

    [Fact]
    public void Test_Unauthorized_WarnsAndAnswersFalse()
    {
        using var s = Session();
        var r = s.Ps.Run("Test-Qcow2Cache -Repository $args[0] -Tag x", Repo("testauth"));
        Assert.Equal(false, r.Output.Single().BaseObject);
        Assert.Contains(r.Warnings, w => w.StartsWith("RegistryUnauthorized", StringComparison.Ordinal));
    }
}

public sealed class TokenRegistryFixture : IDisposable
{
    private RegistryServer? _server;

    public RegistryServer Server => _server ??= RegistryServer.StartWithTokenAuth();

    public void Dispose() => _server?.Dispose();
}

/// <summary>Bearer tokens: docker-registry in token mode with a token service that checks Basic credentials.</summary>
public sealed class TokenRegistryTests : IClassFixture<TokenRegistryFixture>
{
    private const string WithCredential = "$c = [pscredential]::new($args[2], [System.Net.NetworkCredential]::new('', $args[3]).SecurePassword); ";
    private readonly TokenRegistryFixture _registry;

    public TokenRegistryTests(TokenRegistryFixture registry) => _registry = registry;

    [Fact]
    public void SaveAndGet_WithBearerTokens_RoundTrip_AndNeitherPasswordNorTokenIsShown()
    {
        var repo = $"{_registry.Server.Host}/token/base";
        using var s = new CacheSession();
        var disk = TestDisks.CreateQcow2(s.Work.Combine("b.qcow2"), 9, seed: 50);
        var issuedBefore = _registry.Server.Tokens!.TokensIssued;
        var save = s.Ps.Run(WithCredential + "Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag t -Credential $c -Verbose", disk, repo, RegistryServer.User, RegistryServer.Password);
        Assert.Empty(save.Errors);
        Assert.True(_registry.Server.Tokens.TokensIssued > issuedBefore, "the push must have gone through the token service");

        using var fresh = new CacheSession();
        var get = fresh.Ps.Run(WithCredential + "Get-Qcow2Cache -Repository $args[1] -Tag t -Credential $c -Verbose", disk, repo, RegistryServer.User, RegistryServer.Password);
        Assert.Empty(get.Errors);
        Assert.True(TestDisks.SameBytes(disk, (string)get.Output.Single().Properties["Path"].Value));
        Assert.DoesNotContain(RegistryServer.Password, save.AllText + get.AllText);
        Assert.DoesNotContain("eyJ", save.AllText + get.AllText); // no JWT in any stream
    }

    [Fact]
    public void Get_AnonymousToken_IsRefusedAsUnauthorized()
    {
        using var s = new CacheSession();
        var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag t", $"{_registry.Server.Host}/token/anon");
        Assert.Equal("RegistryUnauthorized,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
    }
}
