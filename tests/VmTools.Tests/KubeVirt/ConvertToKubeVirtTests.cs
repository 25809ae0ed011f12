using System.Text;
using System.Text.Json.Nodes;
using VmTools.Core.CloudInit;
using VmTools.Core.Images;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;
using YamlDotNet.RepresentationModel;

namespace VmTools.Tests.KubeVirt;

/// <summary>
/// ConvertTo-KubeVirtVirtualMachine in a real PowerShell engine with the built module: fed as users feed it
/// (Get-Qcow2Cache entries, New-CloudInitConfig output, look-alike objects). The schema proof of the
/// documents is in the core suite (KubeVirtManifestTests); here the pipeline shapes and the text.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ConvertToKubeVirtTests : IDisposable
{
    private const string Digest = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    private const string Command = "VmTools.Commands.ConvertToKubeVirtVirtualMachineCommand";
    private readonly TempDirectory _temp = new("vmtools-kubevirt-cmdlet");
    private readonly PowerShellHost _ps;

    public ConvertToKubeVirtTests()
    {
        _ps = new PowerShellHost(new Dictionary<string, string?> { ["VM_CONFIG_DIR"] = null, ["CLOUD_INIT_DIR"] = null, ["VMTOOLS_HOME"] = _temp.Combine("home") });
    }

    public void Dispose()
    {
        _ps.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public void FlightVmPiped_TakesItsCachedImageByDigest_ItsSeedAndSizing()
    {
        var home = _temp.Combine("home");
        var paths = VmToolsPaths.FromEnvironment(n => n == "VMTOOLS_HOME" ? home : null).EnsureCreated();
        var seedDir = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(CloudInitConfig.Create(new CloudInitInputs { BaseDirectory = _temp.Path, Hostname = "ignored", MacAddress = "52:54:00:00:0a:01" }), seedDir);
        var disk = _temp.Combine("disk.qcow2");
        File.WriteAllBytes(disk, new byte[4096]);
        const string layer = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        using (var db = StateDb.Open(paths.DatabasePath))
        {
            var images = new ImageStore(db, paths);
            var stored = images.Adopt(layer, disk, Array.Empty<BootFile>(), allowCopy: true)!;
            images.RecordRef("registry.example:5000", "bases/debian", "base-qcow2-abc", Digest, layer, "Registry");
            var dir = Path.Combine(paths.VmDirectory, "id1");
            new VmStore(db, paths).Insert(null, new FlightVm
            {
                Name = "Web_1", Id = "id1", State = VmState.Stopped, ImagePath = stored.DiskPath, DiskMode = VmDiskMode.Overlay,
                OverlayPath = Path.Combine(dir, "overlay.qcow2"), Directory = dir, ConsoleLogPath = Path.Combine(dir, "console.log"),
                QmpSocketPath = Path.Combine(dir, "qmp.sock"), Network = VmNetworkMode.User, MacAddress = "52:54:00:00:0a:01",
                MemoryMB = 768, CpuCount = 3, CloudInitPath = seedDir, CreatedAt = DateTimeOffset.UtcNow,
            });
        }

        var vm = _ps.Invoke("Get-FlightVm -Name Web_1 | ConvertTo-KubeVirtVirtualMachine").Last();
        Assert.Equal("web-1", vm.Properties["Name"].Value);
        Assert.Equal("registry.example:5000/bases/debian@" + Digest, vm.Properties["Image"].Value);
        Assert.Equal(768, vm.Properties["MemoryMB"].Value);
        Assert.Equal(3, vm.Properties["CpuCount"].Value);
        Assert.Equal("52:54:00:00:0a:01", vm.Properties["MacAddress"].Value);
        Assert.Equal("web-1-cloudinit", vm.Properties["UserDataSecretName"].Value);

        var error = _ps.ExpectError("Get-FlightVm -Name Web_1 | ConvertTo-KubeVirtVirtualMachine -CloudInit (New-CloudInitConfig -Hostname other -MacAddress 52:54:00:00:0b:02)");
        Assert.Equal("KubeVirtMacAddressConflict," + Command, error.FullyQualifiedErrorId);
    }

    /// <summary>What Get-Qcow2Cache returns for a pulled base.</summary>
    private static Qcow2CacheEntry CacheEntry => new()
    {
        Reference = "registry.example:5000/bases/debian:12",
        Tag = "12",
        Digest = Digest,
        Path = "/var/lib/vmtools/images/disk.qcow2",
        Status = CacheStatus.Hit,
        Source = "Registry",
    };

    [Fact]
    public void ThreeConfigsPiped_WithACacheEntryAsImage_AsYaml_AreSixDocumentsWithoutInlineSecrets()
    {
        var configDir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path);
        var yaml = (string)_ps.Invoke(
            "param($dir, $base) 1..3 | ForEach-Object { New-CloudInitConfig -ConfigDirectory $dir -Hostname \"web-$_\" -UserName ops -Password (ConvertTo-SecureString 'Hosted-Pw-31' -AsPlainText -Force) } | ConvertTo-KubeVirtVirtualMachine -Image $base -Namespace ci -MemoryMB 2048 -CpuCount 2 -AsYaml",
            configDir, CacheEntry).Single().BaseObject;

        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var docs = stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
        Assert.Equal(new[] { "Secret", "VirtualMachine", "Secret", "VirtualMachine", "Secret", "VirtualMachine" }, docs.Select(d => d["kind"].ToString()));

        var vmTexts = yaml.Split("\n---\n").Where(t => t.Contains("kind: \"VirtualMachine\"", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, vmTexts.Count);
        foreach (var text in vmTexts)
        {
            Assert.Contains("image: \"registry.example:5000/bases/debian@" + Digest + "\"", text, StringComparison.Ordinal);
            Assert.Contains("cores: 2", text, StringComparison.Ordinal);
            Assert.Contains("guest: \"2048Mi\"", text, StringComparison.Ordinal);
            foreach (var secret in new[] { "Hosted-Pw-31", "PRIVATE KEY", "enroll.example" }) Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }

        var userData = Encoding.UTF8.GetString(Convert.FromBase64String(((YamlMappingNode)docs[0]["data"])["userdata"].ToString()));
        Assert.Contains("Hosted-Pw-31", userData, StringComparison.Ordinal);
    }

    [Fact]
    public void CacheEntryPiped_WithAConfig_GivesSecretAndVirtualMachineObjects()
    {
        var output = _ps.Invoke(
            "param($base) $cfg = New-CloudInitConfig -Hostname Probe.ci.example -MacAddress 52:54:00:de:ad:01; $base | ConvertTo-KubeVirtVirtualMachine -CloudInit $cfg -Labels @{ team = 'infra' }",
            CacheEntry);
        Assert.Equal(new[] { "CloudInitSecretManifest", "VirtualMachineManifest" }, output.Select(o => o.BaseObject.GetType().Name));
        var vm = output[1];
        Assert.Equal("probe", vm.Properties["Name"].Value);
        Assert.Equal("52:54:00:de:ad:01", vm.Properties["MacAddress"].Value);
        Assert.Equal("probe-cloudinit", vm.Properties["UserDataSecretName"].Value);
        var document = JsonNode.Parse(_ps.Invoke("param($vm) $vm.ToJsonObject().ToJsonString()", vm).Single().ToString()!)!;
        Assert.Equal("infra", (string?)document["metadata"]!["labels"]!["team"]);
        Assert.Equal("vmtools", (string?)document["metadata"]!["labels"]!["app.kubernetes.io/managed-by"]);
        var table = _ps.Invoke("param($o) $o | Out-String -Width 200", output).Single().ToString()!;
        Assert.Contains("VirtualMachine", table, StringComparison.Ordinal);
        Assert.Contains("probe-cloudinit", table, StringComparison.Ordinal);
    }

    [Fact]
    public void LookAlikeCacheEntries_AsJson_AreAV1List()
    {
        var json = _ps.Invoke(
            "param($d) 'a', 'b' | ForEach-Object { [pscustomobject]@{ Reference = \"registry.example/bases/$_`:1\"; Digest = $d } } | ForEach-Object { $_ | ConvertTo-KubeVirtVirtualMachine -Name \"vm-$($_.Reference.Split('/')[-1].Split(':')[0])\" -AsJson }",
            Digest);
        Assert.Equal(2, json.Count);
        var single = JsonNode.Parse(json[0].ToString()!)!;
        Assert.Equal("VirtualMachine", (string?)single["kind"]);

        var list = JsonNode.Parse(_ps.Invoke(
            "param($d) $seeds = 1..2 | ForEach-Object { New-CloudInitConfig -Hostname \"n$_\" }; $seeds | ConvertTo-KubeVirtVirtualMachine -Image ([pscustomobject]@{ Reference = 'registry.example/bases/a'; Digest = $d }) -AsJson",
            Digest).Single().ToString()!)!;
        Assert.Equal("List", (string?)list["kind"]);
        Assert.Equal(4, list["items"]!.AsArray().Count);
    }

    [Fact]
    public void EntryWithoutDigest_IsANonTerminatingErrorWithItsId_AndTheOthersStillConvert()
    {
        var r = _ps.Run(
            "param($d) [pscustomobject]@{ Reference = 'registry.example/bases/a:1' }, [pscustomobject]@{ Reference = 'registry.example/bases/b:1'; Digest = $d } | ConvertTo-KubeVirtVirtualMachine -Namespace ci -RunStrategy Manual -AsYaml",
            Digest);
        Assert.Equal("KubeVirtImageDigestMissing," + Command, Assert.Single(r.Errors).FullyQualifiedErrorId);
        var yaml = (string)Assert.Single(r.Output).BaseObject;
        Assert.Contains("registry.example/bases/b@" + Digest, yaml, StringComparison.Ordinal);
        Assert.Contains("runStrategy: \"Manual\"", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void TwoVmsWithOneName_TheSecondIsRefused()
    {
        var r = _ps.Run("param($e) $e, $e | ConvertTo-KubeVirtVirtualMachine -Name twin", CacheEntry);
        Assert.Single(r.Output);
        Assert.Equal("KubeVirtNameDuplicate," + Command, Assert.Single(r.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void SeedImageWithAnAgentPayload_IsRefused_ButItsConfigConverts()
    {
        var configDir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path);
        var iso = _temp.Combine("seed.iso");
        var error = _ps.ExpectError("param($dir, $iso, $e) New-CloudInitConfig -ConfigDirectory $dir -Hostname vm1 | New-CloudInitIso -Path $iso | ConvertTo-KubeVirtVirtualMachine -Image $e", configDir, iso, CacheEntry);
        Assert.Equal("KubeVirtSeedPayloadUnsupported," + Command, error.FullyQualifiedErrorId);

        var plain = _ps.Invoke("param($iso, $e) New-CloudInitConfig -Hostname plain -MacAddress 52:54:00:00:00:07 | New-CloudInitIso -Path $iso -Force | ConvertTo-KubeVirtVirtualMachine -Image $e", iso, CacheEntry);
        Assert.Equal("52:54:00:00:00:07", plain.Last().Properties["MacAddress"].Value);
        Assert.Equal("plain", plain.Last().Properties["Name"].Value);
    }
}
