using System.Collections;
using System.Management.Automation;
using VmTools.Core;
using VmTools.Core.CloudInit;
using VmTools.Core.Images;
using VmTools.Core.KubeVirt;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>
/// Describes cached bases and seeds as KubeVirt VirtualMachines (plus the Secrets holding their user-data),
/// as objects or as the YAML/JSON text <c>kubectl apply -f -</c> takes. Each piped seed, cache entry or
/// FlightVm is one VM; what the pipeline does not bring comes from -Image / -CloudInit.
/// </summary>
[Cmdlet(VerbsData.ConvertTo, "KubeVirtVirtualMachine", DefaultParameterSetName = ObjectSet)]
[OutputType(typeof(VirtualMachineManifest), typeof(CloudInitSecretManifest), ParameterSetName = new[] { ObjectSet })]
[OutputType(typeof(string), ParameterSetName = new[] { YamlSet, JsonSet })]
public sealed class ConvertToKubeVirtVirtualMachineCommand : VmToolsCmdlet
{
    private const string ObjectSet = "Object";
    private const string YamlSet = "Yaml";
    private const string JsonSet = "Json";

    private readonly List<KubernetesManifest> _manifests = new();
    private readonly VirtualMachineNames _names = new();

    /// <summary>A Get-Qcow2Cache entry (or any object with Reference and Digest), a CloudInitConfig, a CloudInitIso, or a FlightVm.</summary>
    [Parameter(ValueFromPipeline = true)]
    public PSObject? InputObject { get; set; }

    /// <summary>The cached base: a Get-Qcow2Cache entry, or a reference pinned by digest (registry/repo@sha256:...).</summary>
    [Parameter]
    public object? Image { get; set; }

    /// <summary>The seed: a CloudInitConfig, a CloudInitIso, or the path of a seed image or seed directory.</summary>
    [Parameter]
    public object? CloudInit { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Namespace { get; set; } = KubeVirtVmRequest.DefaultNamespace;

    [Parameter]
    [ValidateRange(16, 1_048_576)]
    public int MemoryMB { get; set; } = 512;

    [Parameter]
    [ValidateRange(1, 255)]
    public int CpuCount { get; set; } = 1;

    [Parameter]
    public KubeVirtRunStrategy RunStrategy { get; set; } = KubeVirtRunStrategy.Always;

    [Parameter]
    public KubeVirtNicBinding NetworkBinding { get; set; } = KubeVirtNicBinding.Masquerade;

    [Parameter]
    public Hashtable? Labels { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = YamlSet)]
    public SwitchParameter AsYaml { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = JsonSet)]
    public SwitchParameter AsJson { get; set; }

    protected override void ProcessRecord()
    {
        var request = TryGuard(BuildRequest);
        if (request is null) return;
        var manifests = TryGuard(() => KubeVirtManifestBuilder.Build(request));
        if (manifests is null) return;
        var vm = manifests.OfType<VirtualMachineManifest>().Single();
        if (TryGuard(() => { _names.Claim(vm); return vm; }) is null) return;

        if (ParameterSetName == ObjectSet) WriteObject(manifests, enumerateCollection: true);
        else _manifests.AddRange(manifests);
    }

    protected override void EndProcessing()
    {
        if (_manifests.Count > 0) WriteObject(AsJson ? ManifestText.ToJson(_manifests) : ManifestText.ToYaml(_manifests));
        base.EndProcessing();
    }

    private KubeVirtVmRequest BuildRequest()
    {
        var piped = InputObject?.BaseObject;
        var bound = MyInvocation.BoundParameters;
        ContainerDiskImage? image = Image is null ? null : ImageFrom(Image);
        KubeVirtSeed? seed = CloudInit is null ? null : SeedFrom(CloudInit);
        var request = new KubeVirtVmRequest { Image = image!, Seed = seed, Name = Name, Namespace = Namespace, MemoryMB = MemoryMB, CpuCount = CpuCount, RunStrategy = RunStrategy, Binding = NetworkBinding, Labels = LabelsFrom(Labels) };
        request = piped switch
        {
            null => request,
            FlightVm vm => request.ForFlightVm(vm, () => ImageOfFlightVm(vm), memoryGiven: bound.ContainsKey(nameof(MemoryMB)), cpuGiven: bound.ContainsKey(nameof(CpuCount))),
            CloudInitConfig or CloudInitIso => request with { Seed = SeedFrom(piped) },
            _ => request with { Image = ImageFrom(InputObject!) },
        };

        return request with
        {
            Image = request.Image ?? throw new VmToolsException("KubeVirtImageMissing", FailureKind.InvalidArgument,
                "No cached base for the VirtualMachine: pipe a Get-Qcow2Cache entry or give -Image."),
        };
    }

    private ContainerDiskImage ImageOfFlightVm(FlightVm vm)
    {
        using var db = OpenState();
        return KubeVirtManifestBuilder.ImageForDisk(new ImageStore(db, Paths), vm.ImagePath);
    }

    private static ContainerDiskImage ImageFrom(object value)
    {
        var o = PSObject.AsPSObject(value);
        if (o.BaseObject is Qcow2CacheEntry entry) return ContainerDiskImage.FromCacheEntry(entry);
        if (o.BaseObject is string reference) return ContainerDiskImage.FromReference(reference, null);
        if (o.Properties["Reference"]?.Value is string r) return ContainerDiskImage.FromReference(r, o.Properties["Digest"]?.Value as string);
        throw new VmToolsException("KubeVirtInputUnsupported", FailureKind.InvalidArgument,
            $"'{o}' is neither a Get-Qcow2Cache entry (Reference, Digest), a CloudInitConfig, a CloudInitIso nor a FlightVm.") { Target = o.ToString() };
    }

    private KubeVirtSeed SeedFrom(object value) => PSObject.AsPSObject(value).BaseObject switch
    {
        CloudInitConfig config => KubeVirtSeed.FromConfig(config),
        CloudInitIso iso => KubeVirtSeed.FromIso(iso.Path),
        string path => KubeVirtSeed.FromPath(ResolvePath(path)),
        var other => throw new VmToolsException("KubeVirtInputUnsupported", FailureKind.InvalidArgument,
            $"-CloudInit '{other}' is neither a CloudInitConfig, a CloudInitIso nor the path of a seed.") { Target = other?.ToString() },
    };

    private static Dictionary<string, string> LabelsFrom(Hashtable? labels)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (labels is null) return result;
        foreach (DictionaryEntry e in labels) result[e.Key.ToString()!] = e.Value?.ToString() ?? string.Empty;
        return result;
    }

    /// <summary>One bad pipeline item is a non-terminating error; the rest still convert.</summary>
    private T? TryGuard<T>(Func<T> work) where T : class
    {
        try
        {
            return work();
        }
        catch (VmToolsException e)
        {
            WriteError(ToErrorRecord(e));
            return null;
        }
    }
}
