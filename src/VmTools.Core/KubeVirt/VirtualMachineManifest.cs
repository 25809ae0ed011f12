using System.Text.Json.Nodes;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// A <c>kubevirt.io/v1</c> VirtualMachine: the cached base as a containerDisk (pinned by digest), the seed as
/// a cloudInitNoCloud disk whose user-data lives in <see cref="UserDataSecretName"/>, one NIC on the pod
/// network with the MAC the seed's network-config matches. Nothing secret is held here.
/// </summary>
public sealed record VirtualMachineManifest : KubernetesManifest
{
    public const string RootDiskName = "rootdisk";
    public const string CloudInitDiskName = "cloudinitdisk";
    public const string NetworkName = "default";

    public override string ApiVersion => "kubevirt.io/v1";

    public override string Kind => "VirtualMachine";

    public required string Image { get; init; }

    public required int CpuCount { get; init; }

    public required int MemoryMB { get; init; }

    public required KubeVirtRunStrategy RunStrategy { get; init; }

    public required KubeVirtNicBinding Binding { get; init; }

    public string? MacAddress { get; init; }

    /// <summary>The seed's network-config, inline: it holds addresses, no secrets.</summary>
    public string? NetworkData { get; init; }

    public string? UserDataSecretName { get; init; }

    public override JsonObject ToJsonObject()
    {
        var nic = new JsonObject { ["name"] = NetworkName };
        nic[Binding == KubeVirtNicBinding.Bridge ? "bridge" : "masquerade"] = new JsonObject();
        if (MacAddress is not null) nic["macAddress"] = MacAddress;

        var disks = new JsonArray { Disk(RootDiskName) };
        var volumes = new JsonArray
        {
            new JsonObject
            {
                ["name"] = RootDiskName,
                ["containerDisk"] = new JsonObject { ["image"] = Image, ["path"] = ContainerDiskImage.DiskPath },
            },
        };

        if (UserDataSecretName is not null || NetworkData is not null)
        {
            var noCloud = new JsonObject();
            if (UserDataSecretName is not null) noCloud["secretRef"] = new JsonObject { ["name"] = UserDataSecretName };
            if (NetworkData is not null) noCloud["networkData"] = NetworkData;
            disks.Add(Disk(CloudInitDiskName));
            volumes.Add(new JsonObject { ["name"] = CloudInitDiskName, ["cloudInitNoCloud"] = noCloud });
        }

        var templateLabels = new JsonObject();
        foreach (var (key, value) in Labels.OrderBy(l => l.Key, StringComparer.Ordinal)) templateLabels[key] = value;

        return new JsonObject
        {
            ["apiVersion"] = ApiVersion,
            ["kind"] = Kind,
            ["metadata"] = Metadata(),
            ["spec"] = new JsonObject
            {
                ["runStrategy"] = RunStrategy.ToString(),
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = templateLabels },
                    ["spec"] = new JsonObject
                    {
                        ["domain"] = new JsonObject
                        {
                            ["cpu"] = new JsonObject { ["cores"] = CpuCount },
                            ["memory"] = new JsonObject { ["guest"] = MemoryMB + "Mi" },
                            ["devices"] = new JsonObject { ["disks"] = disks, ["interfaces"] = new JsonArray { nic } },
                        },
                        ["networks"] = new JsonArray { new JsonObject { ["name"] = NetworkName, ["pod"] = new JsonObject() } },
                        ["volumes"] = volumes,
                    },
                },
            },
        };
    }

    private static JsonObject Disk(string name) => new() { ["name"] = name, ["disk"] = new JsonObject { ["bus"] = "virtio" } };
}
