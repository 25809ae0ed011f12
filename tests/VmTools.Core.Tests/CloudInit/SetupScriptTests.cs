using VmTools.Core.CloudInit;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>
/// The shipped guest script, run for real with /bin/sh against a payload directory and target paths
/// inside a temp folder (the package, CA and service steps need a guest: the boot test and issue #6 cover those).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SetupScriptTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-setup");

    public void Dispose() => _temp.Dispose();

    private string ScriptFile()
    {
        var path = _temp.Combine("vmtools-setup");
        File.WriteAllText(path, SetupScript.Render("flightctl-agent"));
        return path;
    }

    private (int Code, string Output) Run(string payload, IDictionary<string, string>? extra = null)
    {
        var env = new Dictionary<string, string>
        {
            ["VMTOOLS_PAYLOAD_DIR"] = payload,
            ["VMTOOLS_AGENT_CONFIG_DIR"] = _temp.Combine("etc", "flightctl"),
            ["VMTOOLS_REGISTRY_CONF"] = _temp.Combine("etc", "containers", "registries.conf.d", "custom-registry.conf"),
            ["VMTOOLS_SKIP_SERVICE"] = "1",
            ["VMTOOLS_CONSOLES"] = string.Empty,
        };
        if (extra is not null) foreach (var (k, v) in extra) env[k] = v;
        var (code, stdout, stderr) = Programs.RunIn(null, env, "/bin/sh", ScriptFile());
        return (code, stdout + stderr);
    }

    /// <summary>The payload as the seed carries it, minus packages and CA (those change the host they run on).</summary>
    private string Payload()
    {
        var seed = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path) }), seed);
        var payload = Path.Combine(seed, NoCloudSeed.PayloadDirectory);
        Directory.Delete(Path.Combine(payload, "packages"), true);
        File.Delete(Path.Combine(payload, "ca.pem"));
        return payload;
    }

    [Fact]
    public void Script_ParsesUnderShAndBash()
    {
        var script = ScriptFile();
        Programs.MustRun("/bin/sh", "-n", script);
        Programs.MustRun(RealComponent.RequireProgram("bash", "apt-get install bash"), "-n", script);
    }

    [Fact]
    public void Script_IsShellcheckClean()
    {
        var shellcheck = RealComponent.RequireProgram("shellcheck", "apt-get install shellcheck");
        var (code, stdout, stderr) = Programs.Run(shellcheck, "-s", "sh", ScriptFile());
        Assert.True(code == 0, stdout + stderr);
    }

    [Fact]
    public void Script_InstallsConfigAndCerts_WithModes_AndSaysOk_Twice()
    {
        var payload = Payload();
        for (var run = 0; run < 2; run++)
        {
            var (code, output) = Run(payload);
            Assert.True(code == 0, output);
            Assert.EndsWith(SetupScript.SuccessMarker, output.Trim());
            Assert.Equal((UnixFileMode)0x1A4, File.GetUnixFileMode(_temp.Combine("etc", "flightctl", "config.yaml")));
            Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(_temp.Combine("etc", "flightctl", "certs", "client-enrollment.key")));
            Assert.Equal(File.ReadAllText(Path.Combine(payload, "certs", "client-enrollment.crt")), File.ReadAllText(_temp.Combine("etc", "flightctl", "certs", "client-enrollment.crt")));
            Assert.Equal(File.ReadAllText(Path.Combine(payload, "registry.conf")), File.ReadAllText(_temp.Combine("etc", "containers", "registries.conf.d", "custom-registry.conf")));
        }
    }

    [Fact]
    public void Script_WithoutCertificates_SaysFailedInstallCerts()
    {
        var payload = Payload();
        foreach (var f in Directory.GetFiles(Path.Combine(payload, "certs"))) File.Delete(f);
        var (code, output) = Run(payload);
        Assert.Equal(1, code);
        Assert.Contains(SetupScript.FailureMarker + " install-certs", output);
        Assert.DoesNotContain(SetupScript.SuccessMarker, output);
    }

    [Fact]
    public void Script_WithoutASeedDevice_SaysFailedFindSeed()
    {
        var (code, output) = Run(string.Empty, new Dictionary<string, string> { ["VMTOOLS_SEED_LABEL"] = "no-such-label-" + Guid.NewGuid().ToString("N")[..6] });
        Assert.Equal(1, code);
        Assert.Contains(SetupScript.FailureMarker + " find-seed", output);
    }

    [Fact]
    public void RenderedScript_CarriesTheServiceName()
    {
        var text = SetupScript.Render("my-agent");
        Assert.Contains("SERVICE=\"${VMTOOLS_AGENT_SERVICE:-my-agent}\"", text);
        Assert.DoesNotContain("@@", text);
    }
}
