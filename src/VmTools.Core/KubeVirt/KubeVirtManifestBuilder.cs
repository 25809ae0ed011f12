using System.Text;
using System.Text.RegularExpressions;
using VmTools.Core.Images;
using VmTools.Core.Vms;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// Turns a <see cref="KubeVirtVmRequest"/> into the documents <c>kubectl apply</c> takes: the Secret
/// holding the user-data first (the VM's volume refers to it), then the VirtualMachine.
/// </summary>
public static partial class KubeVirtManifestBuilder
{
    /// <summary>Kubernetes refuses a Secret whose data exceeds 1 MiB.</summary>
    public const int MaxSecretBytes = 1 << 20;

    public const string SecretSuffix = "-cloudinit";

    public static IReadOnlyList<KubernetesManifest> Build(KubeVirtVmRequest request)
    {
        var name = request.Name ?? NameFromHostname(request.Seed?.Hostname) ?? request.Image.RepositoryName
            ?? throw new VmToolsException("KubeVirtNameRequired", FailureKind.InvalidArgument,
                $"No name for the VirtualMachine of '{request.Image}': give -Name, or a seed with a hostname.");
        RequireDnsLabel(name, "KubeVirtNameInvalid", "VirtualMachine name");
        RequireDnsLabel(request.Namespace, "KubeVirtNamespaceInvalid", "namespace");
        if (request.CpuCount < 1) throw Invalid("KubeVirtCpuCountInvalid", $"{request.CpuCount} CPUs", "at least 1");
        if (request.MemoryMB < 16) throw Invalid("KubeVirtMemoryInvalid", $"{request.MemoryMB} MB", "at least 16 MB");

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in request.Labels)
        {
            RequireLabel(key, value);
            labels[key] = value;
        }

        labels[KubernetesManifest.ManagedByLabel] = KubernetesManifest.ManagedByValue;

        var mac = request.MacAddress is { } given ? MacAddresses.Require(given, "KubeVirtMacAddressInvalid", "The MAC address") : null;
        if (request.Seed?.MacAddress is { } seedMac)
        {
            if (mac is not null && mac != seedMac)
            {
                throw new VmToolsException("KubeVirtMacAddressConflict", FailureKind.InvalidArgument,
                    $"The seed's network-config matches the NIC by {seedMac}, but {mac} was given for '{name}'.") { Target = name };
            }

            mac = seedMac;
        }

        var manifests = new List<KubernetesManifest>();
        string? secretName = null;
        if (request.Seed is { } seed)
        {
            if (Encoding.UTF8.GetByteCount(seed.UserData) > MaxSecretBytes)
            {
                throw new VmToolsException("KubeVirtSeedTooLarge", FailureKind.InvalidArgument,
                    $"The user-data of '{name}' is larger than the 1 MiB a Kubernetes Secret holds (agent packages travel inside it); install the packages into the base image instead.")
                { Target = name };
            }

            secretName = name + SecretSuffix;
            manifests.Add(new CloudInitSecretManifest { Name = secretName, Namespace = request.Namespace, Labels = labels, UserData = seed.UserData });
        }

        manifests.Add(new VirtualMachineManifest
        {
            Name = name,
            Namespace = request.Namespace,
            Labels = labels,
            Image = request.Image.Image,
            CpuCount = request.CpuCount,
            MemoryMB = request.MemoryMB,
            RunStrategy = request.RunStrategy,
            Binding = request.Binding,
            MacAddress = mac,
            NetworkData = request.Seed?.NetworkData is { Length: > 0 } network ? network : null,
            UserDataSecretName = secretName,
        });
        return manifests;
    }

    /// <summary>
    /// The cached image a FlightVm booted from, pinned by digest: the image store knows which references
    /// (and manifest digests) hold the disk at <paramref name="diskPath"/>.
    /// </summary>
    public static ContainerDiskImage ImageForDisk(ImageStore store, string diskPath)
    {
        var refs = store.ReferencesForDisk(diskPath);
        var distinct = refs.Select(r => ContainerDiskImage.FromReference(r.Reference, r.ManifestDigest)).Distinct().ToList();
        return distinct switch
        {
            [var only] => only,
            [] => throw new VmToolsException("KubeVirtImageNotCached", FailureKind.NotFound,
                $"'{diskPath}' is not a disk of the image cache (pulled or published), so no registry image holds it; give -Image.") { Target = diskPath },
            _ => throw new VmToolsException("KubeVirtImageAmbiguous", FailureKind.InvalidArgument,
                $"'{diskPath}' is held by several images ({string.Join(", ", distinct)}); give -Image to choose one.") { Target = diskPath },
        };
    }

    /// <summary>
    /// A FlightVm's name as a Kubernetes name: FlightVm names may hold capitals, '_' and '.', which
    /// Kubernetes names may not.
    /// </summary>
    public static string NameFor(string flightVmName)
        => Regex.Replace(flightVmName.ToLowerInvariant(), "[^a-z0-9-]", "-").Trim('-');

    private static string? NameFromHostname(string? hostname)
        => hostname is null ? null : hostname.Split('.')[0].ToLowerInvariant();

    private static void RequireDnsLabel(string value, string errorId, string what)
    {
        if (!DnsLabel().IsMatch(value))
        {
            throw new VmToolsException(errorId, FailureKind.InvalidArgument,
                $"'{value}' is not a valid {what}: lower-case letters, digits and '-', at most 63, starting and ending alphanumeric.") { Target = value };
        }
    }

    private static void RequireLabel(string key, string value)
    {
        var slash = key.LastIndexOf('/');
        var prefix = slash < 0 ? null : key[..slash];
        var keyName = slash < 0 ? key : key[(slash + 1)..];
        var keyOk = LabelName().IsMatch(keyName) && (prefix is null || (prefix.Length <= 253 && DnsSubdomain().IsMatch(prefix)));
        if (!keyOk || !(value.Length == 0 || LabelName().IsMatch(value)))
        {
            throw new VmToolsException("KubeVirtLabelInvalid", FailureKind.InvalidArgument,
                $"The label '{key}={value}' is not a Kubernetes label: a key [prefix/]name and a value of at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric.")
            { Target = key };
        }
    }

    private static VmToolsException Invalid(string errorId, string value, string rule)
        => new(errorId, FailureKind.InvalidArgument, $"{value} is not allowed: {rule}.") { Target = value };

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
    private static partial Regex LabelName();
}
