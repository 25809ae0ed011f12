using System.Text;
using VmTools.Core.Registry;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Registry;

/// <summary>credHelpers/credsStore in a docker config.json, answered by real helper scripts found on a PATH given to the lookup.</summary>
public sealed class CredentialHelperTests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-credhelper");

    public void Dispose() => _dir.Dispose();

    private static readonly ImageReference Reference = ImageReference.Parse("registry.example.test:5000/team/app:1");

    /// <summary>A helper that logs its argv and stdin, and knows one server.</summary>
    private void Helper(string name, string knownServer, string user, string secret)
    {
        var bin = _dir.Combine("bin");
        Directory.CreateDirectory(bin);
        var path = Path.Combine(bin, "docker-credential-" + name);
        File.WriteAllText(path, $$"""
            #!/bin/sh
            read -r server
            printf '%s %s\n' "$1" "$server" >> "{{_dir.Combine(name + ".calls")}}"
            if [ "$server" = "{{knownServer}}" ]; then
              printf '{"ServerURL":"%s","Username":"{{user}}","Secret":"{{secret}}"}' "$server"
            else
              echo "credentials not found in native keychain"; exit 1
            fi
            """.Replace("\r", string.Empty));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string Calls(string name) => File.Exists(_dir.Combine(name + ".calls")) ? File.ReadAllText(_dir.Combine(name + ".calls")) : string.Empty;

    private RegistryCredential? Find(string configJson)
    {
        var docker = _dir.Combine("docker");
        Directory.CreateDirectory(docker);
        File.WriteAllText(Path.Combine(docker, "config.json"), configJson);
        var env = new Dictionary<string, string?> { ["HOME"] = _dir.Combine("home"), ["DOCKER_CONFIG"] = docker, ["PATH"] = _dir.Combine("bin") + ":/usr/bin:/bin" };
        return CredentialFiles.Find(Reference, k => env.GetValueOrDefault(k));
    }

    private static string Inline(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));

    [Fact]
    public void CredHelperForTheRegistry_IsAskedWithGetAndTheServerOnStdin_AndWinsOverAnInlineAuth()
    {
        Helper("team", "registry.example.test:5000", "helper-user", "helper-secret");

        var found = Find("{\"credHelpers\":{\"registry.example.test:5000\":\"team\"},\"auths\":{\"registry.example.test:5000\":{\"auth\":\"" + Inline("inline", "pw") + "\"}}}");

        Assert.Equal("helper-user", found!.UserName);
        Assert.Equal("helper-secret", found.Password);
        Assert.Equal("docker-credential-team", found.Source);
        Assert.Equal("get registry.example.test:5000\n", Calls("team"));
    }

    [Fact]
    public void CredsStore_AnswersWhenNoCredHelperNamesTheRegistry()
    {
        Helper("store", "registry.example.test:5000", "store-user", "store-secret");
        Helper("other", "elsewhere.test", "x", "y");

        var found = Find("""{"credsStore":"store","credHelpers":{"elsewhere.test":"other"}}""");

        Assert.Equal("store-user", found!.UserName);
        Assert.Empty(Calls("other"));
    }

    [Fact]
    public void AHelperThatKnowsNoLogin_FallsBackToTheInlineAuth()
    {
        Helper("empty", "nobody.test", "x", "y");

        var found = Find("{\"credsStore\":\"empty\",\"auths\":{\"registry.example.test:5000\":{\"auth\":\"" + Inline("inline", "pw") + "\"}}}");

        Assert.Equal("inline", found!.UserName);
        Assert.Contains("get registry.example.test:5000", Calls("empty"));
    }

    [Fact]
    public void AHelperNotOnPath_IsRegistryCredentialHelperNotFound()
    {
        var e = Assert.Throws<VmToolsException>(() => Find("""{"credsStore":"absent"}"""));
        Assert.Equal("RegistryCredentialHelperNotFound", e.ErrorId);
        Assert.Contains("docker-credential-absent", e.Message);
    }

    [Fact]
    public void AHelperNameWithAPath_IsRefusedBeforeAnythingRuns()
    {
        var e = Assert.Throws<VmToolsException>(() => Find("""{"credsStore":"../../tmp/evil"}"""));
        Assert.Equal("RegistryCredentialHelperInvalid", e.ErrorId);
    }
}
