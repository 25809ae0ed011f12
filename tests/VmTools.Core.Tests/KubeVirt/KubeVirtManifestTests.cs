using System.Text;
using System.Text.Json.Nodes;
using VmTools.Core.CloudInit;
using VmTools.Core.KubeVirt;
using VmTools.TestSupport;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace VmTools.Core.Tests.KubeVirt;

/// <summary>
/// A three-VM pool (one cached base, three seeds) described for KubeVirt, proven against KubeVirt v1.9.0's
/// published schema (no API server runs here) and read back through YamlDotNet.
/// </summary>
public sealed class KubeVirtManifestTests : IDisposable
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string PlainPassword = "pool-Plain-Pw-7c1e";
    private const string PasswordHash = "$6$saltsalt$pool.hash.value.not.a.real.one.9f2a";
    private readonly TempDirectory _temp = new("vmtools-kubevirt");

    public void Dispose() => _temp.Dispose();

    private string ConfigDirectory => CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path);

    private CloudInitConfig Seed(int i, string configDir) => CloudInitConfig.Create(new CloudInitInputs
    {
        BaseDirectory = _temp.Path,
        ConfigDirectory = configDir,
        Hostname = $"Web-{i}.pool.example",
        MacAddress = $"52:54:00:aa:bb:0{i}",
        Users = new[]
        {
            new CloudInitUser("admin", new[] { "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPoolKey admin@pool" }, passwordHash: PasswordHash),
            new CloudInitUser("ops", plainPassword: PlainPassword),
        },
    });

    private List<KubernetesManifest> Pool(IReadOnlyDictionary<string, string>? labels = null)
    {
        var configDir = ConfigDirectory;
        var image = ContainerDiskImage.FromReference("registry.example:5000/bases/debian:12", Digest);
        return Enumerable.Range(1, 3).SelectMany(i => KubeVirtManifestBuilder.Build(new KubeVirtVmRequest
        {
            Image = image,
            Seed = KubeVirtSeed.FromConfig(Seed(i, configDir)),
            Namespace = "flight",
            CpuCount = 2,
            MemoryMB = 1024,
            Labels = labels ?? new Dictionary<string, string> { ["pool"] = "web" },
        })).ToList();
    }

    private static IEnumerable<VirtualMachineManifest> Vms(IEnumerable<KubernetesManifest> all) => all.OfType<VirtualMachineManifest>();

    [Fact]
    public void ThreeVmPool_EveryDocumentValidatesAgainstKubeVirt190Schema()
    {
        var pool = Pool();
        Assert.Equal(new[] { "Secret", "VirtualMachine", "Secret", "VirtualMachine", "Secret", "VirtualMachine" }, pool.Select(m => m.Kind));
        foreach (var manifest in pool)
        {
            Assert.Empty(KubeVirtSchema.ValidateAny(manifest.ToJsonObject()));
        }

        // The JSON text kubectl takes for several documents: a v1 List whose items validate the same way.
        var list = JsonNode.Parse(ManifestText.ToJson(pool))!;
        Assert.Equal("List", (string?)list["kind"]);
        Assert.Equal(6, list["items"]!.AsArray().Count);
        foreach (var item in list["items"]!.AsArray()) Assert.Empty(KubeVirtSchema.ValidateAny(item!));
    }

    [Fact]
    public void ThreeVmPool_ContainerDiskNamesTheCachedImageByDigest_WithItsDiskPath()
    {
        foreach (var vm in Vms(Pool()))
        {
            var volume = vm.ToJsonObject()["spec"]!["template"]!["spec"]!["volumes"]![0]!;
            Assert.Equal("registry.example:5000/bases/debian@" + Digest, (string?)volume["containerDisk"]!["image"]);
            Assert.Equal("/disk/disk.qcow2", (string?)volume["containerDisk"]!["path"]);
        }
    }

    [Fact]
    public void ThreeVmPool_NoSecretMaterialInTheVirtualMachines_AllOfItInTheSecrets()
    {
        var configDir = ConfigDirectory;
        var pool = Pool();
        var secretsNeverInline = new[]
        {
            "BEGIN CERTIFICATE", "BEGIN PRIVATE KEY", "SECRET", PlainPassword, PasswordHash, "enroll.example", "insecure = true",
        };
        var payloadFiles = new[] { "config.yaml", "ca.pem", "certs/client-enrollment.key", "certs/client-enrollment.crt" }
            .Select(f => Convert.ToBase64String(File.ReadAllBytes(Path.Combine(configDir, f)))).ToList();

        foreach (var vm in Vms(pool))
        {
            var texts = new[] { vm.ToJsonObject().ToJsonString(), ManifestText.ToYaml(new[] { vm }), vm.ToString() };
            foreach (var text in texts)
            {
                foreach (var secret in secretsNeverInline.Concat(payloadFiles)) Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
                Assert.DoesNotContain("userData", text, StringComparison.Ordinal);
            }

            var noCloud = vm.ToJsonObject()["spec"]!["template"]!["spec"]!["volumes"]![1]!["cloudInitNoCloud"]!;
            Assert.Equal(vm.Name + "-cloudinit", (string?)noCloud["secretRef"]!["name"]);
        }

        // What the VMs leave out is in the Secrets they name, so the check above cannot pass by losing it.
        foreach (var secret in pool.OfType<CloudInitSecretManifest>())
        {
            var userData = Encoding.UTF8.GetString(Convert.FromBase64String((string)secret.ToJsonObject()["data"]!["userdata"]!));
            Assert.StartsWith("#cloud-config\n", userData, StringComparison.Ordinal);
            Assert.Contains(PlainPassword, userData, StringComparison.Ordinal);
            Assert.Contains(PasswordHash, userData, StringComparison.Ordinal);
            foreach (var payload in payloadFiles) Assert.Contains(payload, userData, StringComparison.Ordinal);
            Assert.Contains(KubeVirtSeed.GuestPayloadDirectory + "/certs/client-enrollment.key", userData, StringComparison.Ordinal);
            Assert.Contains("VMTOOLS_PAYLOAD_DIR=" + KubeVirtSeed.GuestPayloadDirectory, userData, StringComparison.Ordinal);
            Assert.DoesNotContain(PlainPassword, secret.ToString(), StringComparison.Ordinal);
            // The user-data is cloud-config YAML that cloud-init can parse.
            var parsed = new YamlStream();
            parsed.Load(new StringReader(userData));
            Assert.Contains("write_files", ((YamlMappingNode)parsed.Documents[0].RootNode).Children.Keys.Select(k => k.ToString()));
        }
    }

    [Fact]
    public void ThreeVmPool_InterfaceCarriesTheSeedsMac_WhichTheInlineNetworkDataMatches()
    {
        var vms = Vms(Pool()).ToList();
        Assert.Equal(new[] { "web-1", "web-2", "web-3" }, vms.Select(v => v.Name));
        for (var i = 0; i < 3; i++)
        {
            var spec = vms[i].ToJsonObject()["spec"]!["template"]!["spec"]!;
            var nic = spec["domain"]!["devices"]!["interfaces"]![0]!;
            Assert.Equal($"52:54:00:aa:bb:0{i + 1}", (string?)nic["macAddress"]);
            Assert.NotNull(nic["masquerade"]);
            Assert.Equal((string?)nic["name"], (string?)spec["networks"]![0]!["name"]);
            var networkData = (string)spec["volumes"]![1]!["cloudInitNoCloud"]!["networkData"]!;
            Assert.Equal($"52:54:00:aa:bb:0{i + 1}", NoCloudSeed.MacAddressIn(networkData));
            Assert.Contains("dhcp4: true", networkData, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void SizingRunStrategyAndLabels_ComeFromTheRequest_WithManagedByVmtools()
    {
        var vm = Vms(Pool(new Dictionary<string, string> { ["tier"] = "front", ["example.com/owner"] = "ci" })).First().ToJsonObject();
        Assert.Equal(2, (int)vm["spec"]!["template"]!["spec"]!["domain"]!["cpu"]!["cores"]!);
        Assert.Equal("1024Mi", (string?)vm["spec"]!["template"]!["spec"]!["domain"]!["memory"]!["guest"]);
        Assert.Equal("Always", (string?)vm["spec"]!["runStrategy"]);
        Assert.Equal("flight", (string?)vm["metadata"]!["namespace"]);
        var labels = vm["metadata"]!["labels"]!.AsObject();
        Assert.Equal("vmtools", (string?)labels["app.kubernetes.io/managed-by"]);
        Assert.Equal("front", (string?)labels["tier"]);
        Assert.Equal("ci", (string?)labels["example.com/owner"]);
        Assert.Equal(labels.ToJsonString(), vm["spec"]!["template"]!["metadata"]!["labels"]!.ToJsonString());
    }

    [Fact]
    public void BridgeBinding_AndAnotherRunStrategy_StillValidate()
    {
        var manifests = KubeVirtManifestBuilder.Build(new KubeVirtVmRequest
        {
            Image = ContainerDiskImage.FromReference("registry.example/bases/debian@" + Digest, null),
            Name = "solo",
            RunStrategy = KubeVirtRunStrategy.Halted,
            Binding = KubeVirtNicBinding.Bridge,
            MacAddress = "52:54:00:00:00:09",
        });
        var vm = Assert.Single(manifests).ToJsonObject();
        Assert.Empty(KubeVirtSchema.Validate(vm, "v1.VirtualMachine"));
        Assert.NotNull(vm["spec"]!["template"]!["spec"]!["domain"]!["devices"]!["interfaces"]![0]!["bridge"]);
        Assert.Equal("Halted", (string?)vm["spec"]!["runStrategy"]);
    }

    [Fact]
    public void SchemaValidation_RejectsAnUnknownField()
    {
        var vm = Vms(Pool()).First().ToJsonObject();
        Assert.Empty(KubeVirtSchema.Validate(vm, "v1.VirtualMachine"));
        vm["spec"]!["template"]!["spec"]!["domain"]!["cpu"]!["coresPerSocket"] = 2;
        Assert.NotEmpty(KubeVirtSchema.Validate(vm, "v1.VirtualMachine"));
    }

    [Fact]
    public void SchemaValidation_RejectsAStringWhereAnIntegerBelongs()
    {
        var vm = Vms(Pool()).First().ToJsonObject();
        vm["spec"]!["template"]!["spec"]!["domain"]!["cpu"]!["cores"] = "2";
        Assert.NotEmpty(KubeVirtSchema.Validate(vm, "v1.VirtualMachine"));
    }

    [Fact]
    public void SecretSchema_RejectsAnUnknownFieldAndNonBase64Data()
    {
        var secret = Pool().OfType<CloudInitSecretManifest>().First().ToJsonObject();
        Assert.Empty(KubeVirtSchema.ValidateSecret(secret));
        var extra = secret.DeepClone();
        extra["stringData"] = new JsonObject { ["userdata"] = "#cloud-config" };
        Assert.NotEmpty(KubeVirtSchema.ValidateSecret(extra));
        var notBase64 = secret.DeepClone();
        notBase64["data"]!["userdata"] = "#cloud-config\nnot base64";
        Assert.NotEmpty(KubeVirtSchema.ValidateSecret(notBase64));
    }

    [Fact]
    public void Yaml_IsOneDocumentPerManifest_AndReadsBackAsTheSameDocuments()
    {
        var pool = Pool();
        var yaml = ManifestText.ToYaml(pool);
        Assert.StartsWith("apiVersion:", yaml, StringComparison.Ordinal);
        Assert.Equal(pool.Count - 1, yaml.Split("\n---\n").Length - 1);

        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        Assert.Equal(pool.Count, stream.Documents.Count);
        for (var i = 0; i < pool.Count; i++)
        {
            var readBack = ToJson(stream.Documents[i].RootNode);
            Assert.True(JsonNode.DeepEquals(pool[i].ToJsonObject(), readBack), $"document {i} differs:\n{readBack!.ToJsonString()}");
            Assert.Empty(KubeVirtSchema.ValidateAny(readBack!));
        }
    }

    [Fact]
    public void Image_WithoutADigest_IsRefused()
    {
        var e = Assert.Throws<VmToolsException>(() => ContainerDiskImage.FromReference("registry.example/bases/debian:12", null));
        Assert.Equal("KubeVirtImageDigestMissing", e.ErrorId);
    }

    [Theory]
    [InlineData("Web_1", "KubeVirtNameInvalid")]
    [InlineData("-web", "KubeVirtNameInvalid")]
    public void Name_ThatIsNoDnsLabel_IsRefused(string name, string errorId)
    {
        var e = Assert.Throws<VmToolsException>(() => KubeVirtManifestBuilder.Build(new KubeVirtVmRequest
        {
            Image = ContainerDiskImage.FromReference("registry.example/bases/debian", Digest),
            Name = name,
        }));
        Assert.Equal(errorId, e.ErrorId);
    }

    [Fact]
    public void Label_ThatKubernetesWouldRefuse_IsRefused()
    {
        var e = Assert.Throws<VmToolsException>(() => KubeVirtManifestBuilder.Build(new KubeVirtVmRequest
        {
            Image = ContainerDiskImage.FromReference("registry.example/bases/debian", Digest),
            Name = "web",
            Labels = new Dictionary<string, string> { ["tier"] = "front end" },
        }));
        Assert.Equal("KubeVirtLabelInvalid", e.ErrorId);
    }

    [Fact]
    public void MacAddress_ThatDisagreesWithTheSeed_IsRefused()
    {
        var e = Assert.Throws<VmToolsException>(() => KubeVirtManifestBuilder.Build(new KubeVirtVmRequest
        {
            Image = ContainerDiskImage.FromReference("registry.example/bases/debian", Digest),
            Seed = KubeVirtSeed.FromConfig(Seed(1, ConfigDirectory)),
            MacAddress = "52:54:00:12:34:56",
        }));
        Assert.Equal("KubeVirtMacAddressConflict", e.ErrorId);
    }

    [Fact]
    public void SeedDirectory_WithoutPayload_BecomesTheSeed_WithItsMacAndHostname()
    {
        var config = CloudInitConfig.Create(new CloudInitInputs { BaseDirectory = _temp.Path, Hostname = "plain", MacAddress = "52:54:00:01:02:03" });
        var dir = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(config, dir);
        var seed = KubeVirtSeed.FromPath(dir);
        Assert.Equal("52:54:00:01:02:03", seed.MacAddress);
        Assert.Equal("plain", seed.Hostname);
        var vm = KubeVirtManifestBuilder.Build(new KubeVirtVmRequest { Image = ContainerDiskImage.FromReference("r.example/b", Digest), Seed = seed }).OfType<VirtualMachineManifest>().Single();
        Assert.Equal("plain", vm.Name);
    }

    [Fact]
    public void SeedDirectory_WithAnAgentPayload_IsRefused_ForThePayloadCannotTravel()
    {
        var dir = _temp.Combine("seed");
        NoCloudSeed.WriteDirectory(Seed(1, ConfigDirectory), dir);
        var e = Assert.Throws<VmToolsException>(() => KubeVirtSeed.FromPath(dir));
        Assert.Equal("KubeVirtSeedPayloadUnsupported", e.ErrorId);
    }

    /// <summary>YAML back to JSON: quoted and block scalars are strings, plain ones numbers or booleans where they read as such.</summary>
    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(c => new KeyValuePair<string, JsonNode?>(((YamlScalarNode)c.Key).Value!, ToJson(c.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Style: ScalarStyle.Plain } p when long.TryParse(p.Value, out var n) => JsonValue.Create(n),
        YamlScalarNode { Style: ScalarStyle.Plain, Value: "true" or "false" } b => JsonValue.Create(b.Value == "true"),
        YamlScalarNode { Style: ScalarStyle.Plain, Value: "null" } => null,
        YamlScalarNode s => JsonValue.Create(s.Value),
        _ => throw new InvalidDataException("unexpected YAML node " + node.NodeType),
    };
}
