using System.Text;
using System.Text.Json;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>The rendered seed checked by cloud-init 22.4 itself: its schema validator, its YAML loader and its NoCloud datasource.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NoCloudSeedTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-seed");

    public void Dispose() => _temp.Dispose();

    private CloudInitConfig FullConfig(string? instanceId = "vm-42") => CloudInitConfig.Create(new CloudInitInputs
    {
        ConfigDirectory = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path),
        Hostname = "flight-vm-1",
        InstanceId = instanceId,
        MacAddress = "52:54:00:0a:0b:0c",
        RegistryAddress = "10.0.2.2:5000",
        RegistryInsecure = true,
        Users = new[]
        {
            new CloudInitUser("user", new[] { "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvtools user@ci" }, passwordHash: "$6$rounds=4096$saltsalt$0123456789abcdef"),
            new CloudInitUser("ci", plainPassword: "s3cret: #not-a-comment", sudo: null),
        },
        WriteFiles = new[]
        {
            new CloudInitWriteFile("/etc/motd", "  leading spaces: and a colon\n# not a comment\n"),
            new CloudInitWriteFile("/etc/vmtools/flag", "yes", "0600"),
            new CloudInitWriteFile("/etc/vmtools/unicode", "héllo \"quoted\" \\ back\ttab\n"),
        },
        RunCommands = new[] { "echo 'runcmd: works' > /run/vmtools-proof", "true # trailing" },
    });

    private string WriteUserData(CloudInitConfig config)
    {
        var file = _temp.Combine("user-data-" + Guid.NewGuid().ToString("N")[..6]);
        File.WriteAllText(file, NoCloudSeed.UserData(config));
        return file;
    }

    [Fact]
    public void UserData_PassesCloudInitSchema()
    {
        var (code, output) = CloudInitPackage.Schema(WriteUserData(FullConfig()));
        Assert.True(code == 0, output);
        Assert.Contains("Valid cloud-config", output);
    }

    [Fact]
    public void UserData_WithOnlyIdentity_PassesCloudInitSchema()
    {
        var (code, output) = CloudInitPackage.Schema(WriteUserData(CloudInitConfig.Create(new CloudInitInputs())));
        Assert.True(code == 0, output);
    }

    [Fact]
    public void SchemaCheck_RejectsABrokenDocument_SoItsPassIsMeaningful()
    {
        var file = _temp.Combine("broken");
        File.WriteAllText(file, "#cloud-config\nusers:\n  - name: x\n    lock_passwd: maybe\nruncmd: 7\n");
        Assert.NotEqual(0, CloudInitPackage.Schema(file).ExitCode);
    }

    [Fact]
    public void UserData_ValuesSurviveYaml_Exactly()
    {
        var config = FullConfig();
        var doc = CloudInitPackage.LoadYaml(WriteUserData(config));
        Assert.Equal("flight-vm-1", doc.GetProperty("hostname").GetString());
        var users = doc.GetProperty("users").EnumerateArray().ToArray();
        Assert.Equal("$6$rounds=4096$saltsalt$0123456789abcdef", users[0].GetProperty("passwd").GetString());
        Assert.Equal("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvtools user@ci", users[0].GetProperty("ssh_authorized_keys")[0].GetString());
        Assert.False(users[0].GetProperty("lock_passwd").GetBoolean());
        Assert.Equal("s3cret: #not-a-comment", users[1].GetProperty("plain_text_passwd").GetString());
        Assert.False(users[1].TryGetProperty("sudo", out _));
        var files = doc.GetProperty("write_files").EnumerateArray().ToDictionary(f => f.GetProperty("path").GetString()!, f => f);
        foreach (var f in config.WriteFiles)
        {
            Assert.Equal(f.Content, files[f.Path].GetProperty("content").GetString());
            Assert.Equal(f.Permissions, files[f.Path].GetProperty("permissions").GetString());
        }

        // The shipped setup script goes in whole and is the first command, in exec form.
        Assert.Equal(SetupScript.Render("flightctl-agent"), files[SetupScript.GuestPath].GetProperty("content").GetString());
        var runcmd = doc.GetProperty("runcmd").EnumerateArray().ToArray();
        Assert.Equal(SetupScript.GuestPath, runcmd[0][0].GetString());
        Assert.Equal("echo 'runcmd: works' > /run/vmtools-proof", runcmd[1].GetString());
        Assert.Equal("true # trailing", runcmd[2].GetString());
    }

    [Fact]
    public void UserData_NeverWaitsForCloudInitInsideRuncmd()
    {
        var text = NoCloudSeed.UserData(FullConfig());
        Assert.DoesNotContain("status --wait", text);
        Assert.DoesNotContain("cloud-init status", SetupScript.Template);
    }

    [Fact]
    public void NoCloudDatasource_ReadsTheSeedDirectory()
    {
        var seed = _temp.Combine("cloud-init-data");
        var written = NoCloudSeed.WriteDirectory(FullConfig(), seed);
        var read = CloudInitPackage.ReadSeedDirectory(seed, _temp.Combine("ds"));
        Assert.Equal("vm-42", read.GetProperty("instance_id").GetString());
        Assert.Equal("flight-vm-1", read.GetProperty("hostname").GetString());
        var nic = read.GetProperty("network_config").GetProperty("ethernets").EnumerateObject().Single().Value;
        Assert.Equal("52:54:00:0a:0b:0c", nic.GetProperty("match").GetProperty("macaddress").GetString());
        Assert.True(nic.GetProperty("dhcp4").GetBoolean());
        var parsed = read.GetProperty("interfaces")[0];
        Assert.Equal("eth0", parsed.GetProperty("name").GetString());
        Assert.Equal("52:54:00:0a:0b:0c", parsed.GetProperty("mac_address").GetString());
        Assert.Equal("dhcp4", parsed.GetProperty("subnets")[0].GetProperty("type").GetString());
        Assert.Equal(File.ReadAllText(Path.Combine(seed, "user-data")), read.GetProperty("user_data").GetString());
        Assert.Contains(Path.Combine(seed, "flightctl-config", "packages", "flightctl-agent-0.9.0-1.x86_64.rpm"), written);
    }

    [Fact]
    public async Task NoCloudDatasource_ReadsTheSeedBackFromTheIso()
    {
        var iso = IsoImageWriter.Write(NoCloudSeed.ToIsoContent(FullConfig()), _temp.Combine("seed.iso"), new IsoImageOptions(), null, TestContext.Current.CancellationToken);
        var extracted = _temp.Combine("extracted");
        Programs.MustRun(IsoReaders.Xorriso, "-osirrox", "on", "-indev", iso.Path, "-extract", "/", extracted);
        var read = CloudInitPackage.ReadSeedDirectory(extracted, _temp.Combine("ds"));
        Assert.Equal("vm-42", read.GetProperty("instance_id").GetString());
        Assert.Equal("flight-vm-1", read.GetProperty("hostname").GetString());
    }

    [Fact]
    public void SeedDirectory_HasTheReferenceLayout_WithModes()
    {
        var configDir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path);
        var seed = _temp.Combine("out", "cloud-init-data");
        NoCloudSeed.WriteDirectory(FullConfig(), seed);
        var tree = IsoReaders.Tree(seed);
        Assert.Equal(new[]
        {
            ".vmtools-seed", "flightctl-config", "flightctl-config/ca.pem", "flightctl-config/certs", "flightctl-config/certs/client-enrollment.crt",
            "flightctl-config/certs/client-enrollment.key", "flightctl-config/config.yaml", "flightctl-config/packages",
            "flightctl-config/packages/flightctl-agent-0.9.0-1.x86_64.rpm", "flightctl-config/registry.conf", "flightctl-config/setup.sh",
            "meta-data", "network-config", "user-data",
        }, tree.Keys);
        Assert.Equal((UnixFileMode)0x180, tree["flightctl-config/certs/client-enrollment.key"].Mode);
        Assert.Equal((UnixFileMode)0x180, tree["user-data"].Mode);
        Assert.Equal((UnixFileMode)0x1ED, tree["flightctl-config/setup.sh"].Mode);
        Assert.Equal(IsoReaders.HashFile(Path.Combine(configDir, "rpms", "flightctl-agent-0.9.0-1.x86_64.rpm")), tree["flightctl-config/packages/flightctl-agent-0.9.0-1.x86_64.rpm"].Hash);
        Assert.Equal("[[registry]]\nlocation = \"10.0.2.2:5000\"\ninsecure = true\n", File.ReadAllText(Path.Combine(seed, "flightctl-config", "registry.conf")));
        Assert.Equal("instance-id: \"vm-42\"\nlocal-hostname: \"flight-vm-1\"\n", File.ReadAllText(Path.Combine(seed, "meta-data")));
        // No staging or backup folders remain beside it.
        Assert.Equal(new[] { "cloud-init-data" }, Directory.GetFileSystemEntries(_temp.Combine("out")).Select(Path.GetFileName));
    }

    [Fact]
    public void SeedDirectory_RewrittenWhole_DropsStaleFiles()
    {
        var seed = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(FullConfig(), seed);
        NoCloudSeed.WriteDirectory(CloudInitConfig.Create(new CloudInitInputs { Hostname = "plain" }), seed);
        Assert.Equal(new[] { ".vmtools-seed", "meta-data", "network-config", "user-data" }, IsoReaders.Tree(seed).Keys);
    }

    [Fact]
    public void InstanceId_IsUniquePerConfig_UnlessGiven()
    {
        var a = CloudInitConfig.Create(new CloudInitInputs());
        var b = CloudInitConfig.Create(new CloudInitInputs());
        Assert.NotEqual(a.InstanceId, b.InstanceId);
        Assert.Matches("^vmtools-[0-9a-f]{16}$", a.InstanceId);
        Assert.Equal(a.InstanceId, a.Hostname);
        Assert.Equal("fixed", CloudInitConfig.Create(new CloudInitInputs { InstanceId = "fixed" }).InstanceId);
    }

    [Fact]
    public void NetworkConfig_NamesTheNicByItsMac_NewPerSeedUnlessGiven()
    {
        var a = CloudInitConfig.Create(new CloudInitInputs());
        var b = CloudInitConfig.Create(new CloudInitInputs());
        Assert.Matches("^52:54:00(:[0-9a-f]{2}){3}$", a.MacAddress);
        Assert.NotEqual(a.MacAddress, b.MacAddress);
        Assert.Contains($"macaddress: \"{a.MacAddress}\"", NoCloudSeed.NetworkConfig(a));
        Assert.Contains("set-name: eth0", NoCloudSeed.NetworkConfig(a));
        Assert.Equal("52:54:00:ab:cd:ef", CloudInitConfig.Create(new CloudInitInputs { MacAddress = "52-54-00-AB-CD-EF" }).MacAddress);
        foreach (var bad in new[] { "52:54:00:ab:cd", "01:00:5e:00:00:01", "52:54:00:ab:cd:eg", "52:54-00:ab:cd:ef", "eth0" })
        {
            var e = Assert.Throws<VmToolsException>(() => CloudInitConfig.Create(new CloudInitInputs { MacAddress = bad }));
            Assert.Equal("CloudInitMacAddressInvalid", e.ErrorId);
        }
    }

    [Fact]
    public void MacAddressIn_ReadsTheOneMacANetworkConfigNames()
    {
        Assert.Equal("52:54:00:0a:0b:0c", NoCloudSeed.MacAddressIn(NoCloudSeed.NetworkConfig(FullConfig())));
        Assert.Equal("52:54:00:aa:bb:cc", NoCloudSeed.MacAddressIn("version: 2\nethernets:\n  nic:\n    match:\n      macaddress: 52:54:00:AA:BB:CC\n    dhcp4: true\n"));
        Assert.Null(NoCloudSeed.MacAddressIn("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n")); // the reference seed's form
        Assert.Null(NoCloudSeed.MacAddressIn("ethernets:\n  a:\n    match:\n      macaddress: 52:54:00:00:00:01\n  b:\n    match:\n      macaddress: 52:54:00:00:00:02\n"));
    }

    /// <summary>
    /// What each of cloud-init's renderers makes of the seed's network-config. The v2 form VmTools wrote
    /// before (a name glob under a logical id) came out of the ENI renderer, the one Debian guests with
    /// ifupdown use, as "iface vmtools-nics inet dhcp": DHCP on an interface that does not exist.
    /// </summary>
    [Theory]
    [InlineData("eni", "etc/network/interfaces.d/50-cloud-init", "iface eth0 inet dhcp")]
    [InlineData("eni", "etc/udev/rules.d/70-persistent-net.rules", "ATTR{address}==\"52:54:00:0a:0b:0c\", NAME=\"eth0\"")]
    [InlineData("networkd", "etc/systemd/network/10-cloud-init-eth0.network", "MACAddress=52:54:00:0a:0b:0c")]
    [InlineData("networkd", "etc/systemd/network/10-cloud-init-eth0.network", "DHCP=ipv4")]
    [InlineData("netplan", "etc/netplan/50-cloud-init.yaml", "macaddress: 52:54:00:0a:0b:0c")]
    public void NetworkConfig_EveryRendererGivesTheNicDhcp(string renderer, string file, string expected)
    {
        var config = _temp.Combine("network-config");
        File.WriteAllText(config, NoCloudSeed.NetworkConfig(FullConfig()));
        var written = CloudInitPackage.RenderNetwork(config, renderer, _temp.Combine(renderer));
        Assert.True(written.ContainsKey(file), $"{renderer} wrote {string.Join(", ", written.Keys)}");
        Assert.Contains(expected, written[file]);
    }

    [Fact]
    public void RegistryAddress_RendersRegistriesConf()
    {
        Assert.Equal("[[registry]]\nlocation = \"registry.example:5000\"\ninsecure = false\n", RegistriesConf.Render("registry.example:5000", false));
    }

    [Fact]
    public void PlainPassword_StaysOutOfTheModelsText()
    {
        var user = new CloudInitUser("ci", plainPassword: "hunter2-secret");
        Assert.DoesNotContain("hunter2", user.ToString());
        Assert.DoesNotContain("hunter2", JsonSerializer.Serialize(user));
        Assert.True(user.HasPlainPassword);
    }

    [Fact]
    public void DebPackages_TravelToo()
    {
        var dir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Combine("deb"), packageExtension: ".deb");
        var config = CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = dir });
        Assert.EndsWith(".deb", Assert.Single(config.Agent!.PackageFiles));
        Assert.Contains("/flightctl-config/packages/flightctl-agent-0.9.0-1.x86_64.deb", NoCloudSeed.ToIsoContent(config).Files);
    }

    [Theory]
    [InlineData("certs", "CloudInitCertificatesNotFound")]
    [InlineData("ca", "CloudInitCaCertificateNotFound")]
    [InlineData("config", "CloudInitAgentConfigNotFound")]
    public void MissingRequiredInput_HasItsOwnErrorId(string missing, string errorId)
    {
        var dir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path, certs: missing != "certs", ca: missing != "ca", config: missing != "config");
        var e = Assert.Throws<VmToolsException>(() => CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = dir }));
        Assert.Equal(errorId, e.ErrorId);
        Assert.Equal(FailureKind.NotFound, e.Kind);
    }

    [Fact]
    public void MissingConfigDirectory_IsCloudInitConfigDirectoryNotFound()
    {
        var e = Assert.Throws<VmToolsException>(() => CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = _temp.Combine("nope") }));
        Assert.Equal("CloudInitConfigDirectoryNotFound", e.ErrorId);
    }

    [Theory]
    [InlineData("bad host!", null, "CloudInitHostnameInvalid")]
    [InlineData(null, "id with space", "CloudInitInstanceIdInvalid")]
    public void BadIdentity_IsRejected(string? hostname, string? instanceId, string errorId)
    {
        var e = Assert.Throws<VmToolsException>(() => CloudInitConfig.Create(new CloudInitInputs { Hostname = hostname, InstanceId = instanceId }));
        Assert.Equal(errorId, e.ErrorId);
    }

    [Fact]
    public void RegistryWithCredentials_IsCloudInitRegistryAddressInvalid()
    {
        var e = Assert.Throws<VmToolsException>(() => CloudInitConfig.Create(new CloudInitInputs { ConfigDirectory = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path), RegistryAddress = "https://user:hunter2-pw@host" }));
        Assert.Equal("CloudInitRegistryAddressInvalid", e.ErrorId);
        // On the raw message and target: the address is shown with its user information masked, never the password.
        Assert.DoesNotContain("hunter2-pw", e.Message);
        Assert.DoesNotContain("hunter2-pw", (string)e.Target!);
        Assert.Contains("'https://***@host'", e.Message);
    }

    [Fact]
    public void UserBadInputs_AreRejected()
    {
        Assert.Equal("CloudInitUserNameInvalid", Assert.Throws<VmToolsException>(() => new CloudInitUser("Root User")).ErrorId);
        Assert.Equal("CloudInitPasswordConflict", Assert.Throws<VmToolsException>(() => new CloudInitUser("u", passwordHash: "$6$x", plainPassword: "p")).ErrorId);
        Assert.Equal("CloudInitPasswordHashInvalid", Assert.Throws<VmToolsException>(() => new CloudInitUser("u", passwordHash: "user")).ErrorId);
        var e = Assert.Throws<VmToolsException>(() => new CloudInitUser("u", passwordHash: "plaintext-secret"));
        Assert.DoesNotContain("plaintext-secret", e.Message);
    }
}
