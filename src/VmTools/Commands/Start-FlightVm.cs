using System.Management.Automation;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Boots qemu VMs through a copy-on-write disk over a base image; the VMs outlive this session.</summary>
[Cmdlet(VerbsLifecycle.Start, "FlightVm", SupportsShouldProcess = true)]
[OutputType(typeof(FlightVm))]
public sealed class StartFlightVmCommand : VmToolsCmdlet
{
    /// <summary>The base disk (qcow2 or raw); never written. Binds the Path of Get-Qcow2Cache entries.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path")]
    [ValidateNotNullOrEmpty]
    public string ImagePath { get; set; } = null!;

    [Parameter]
    [ValidatePattern("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    public string? Name { get; set; }

    [Parameter]
    [ValidateRange(1, 256)]
    public int Count { get; set; } = 1;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("KernelPath")]
    public string? Kernel { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("InitrdPath")]
    public string? Initrd { get; set; }

    [Parameter]
    public string? KernelArgs { get; set; }

    /// <summary>
    /// A seed ISO: a path, or any object with a Path property. New-CloudInitIso's output also carries
    /// the MAC its network-config names, which the NIC then gets.
    /// </summary>
    [Parameter]
    public object? CloudInit { get; set; }

    /// <summary>The NIC's MAC, for a seed whose MAC cannot be read from the image; must match the seed's when both are known.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MacAddress { get; set; }

    /// <summary>Extra disks: paths, or objects with a DiskImagePath (or Path) property.</summary>
    [Parameter]
    public object[]? Volume { get; set; }

    [Parameter]
    [ValidateRange(16, 1_048_576)]
    public int MemoryMB { get; set; } = 512;

    [Parameter]
    [ValidateRange(1, 255)]
    public int CpuCount { get; set; } = 1;

    [Parameter]
    public VmNetworkMode Network { get; set; } = VmNetworkMode.User;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Bridge { get; set; } = VmNaming.DefaultBridge;

    [Parameter]
    public VmDiskMode DiskMode { get; set; } = VmDiskMode.Overlay;

    /// <summary>Auto (default; or VMTOOLS_ACCELERATOR when not given) uses KVM only where it can run a stock guest, else TCG.</summary>
    [Parameter]
    public VmAccelerator Accelerator { get; set; } = VmAccelerator.Auto;

    /// <summary>Wait for readiness: the -ReadyPattern console regex, or an SSH banner (forwarded port, or the address on a VmTools bridge).</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    [Parameter]
    public string? ReadyPattern { get; set; }

    /// <summary>Seconds -Wait waits for each VM.</summary>
    [Parameter]
    [ValidateRange(1, 86_400)]
    public int Timeout { get; set; } = 300;

    /// <summary>Seconds -Wait lets a running VM keep an empty console before it warns; 0: never.</summary>
    [Parameter]
    [ValidateRange(0, 86_400)]
    public int SilentConsoleWarning { get; set; } = (int)VmLifecycle.DefaultSilentConsoleWarning.TotalSeconds;

    protected override void ProcessRecord()
    {
        var request = new VmStartRequest
        {
            ImagePath = ResolvePath(ImagePath),
            Name = Name,
            Count = Count,
            KernelPath = Kernel is null ? null : ResolvePath(Kernel),
            InitrdPath = Initrd is null ? null : ResolvePath(Initrd),
            KernelArgs = KernelArgs,
            CloudInitPath = CloudInit is null ? null : ResolvePath(PathOf(CloudInit, "CloudInit", "Path")),
            VolumePaths = (Volume ?? Array.Empty<object>()).Select(v => ResolvePath(PathOf(v, "Volume", "DiskImagePath", "Path"))).ToArray(),
            MemoryMB = MemoryMB,
            CpuCount = CpuCount,
            Network = Network,
            BridgeName = Bridge,
            DiskMode = DiskMode,
            Accelerator = MyInvocation.BoundParameters.ContainsKey(nameof(Accelerator)) ? Accelerator : null,
        };
        // New-CloudInitIso's output carries the MAC its network-config names; a path alone is read by the core.
        var seedMac = CloudInit is null ? null : PSObject.AsPSObject(CloudInit).Properties["MacAddress"]?.Value?.ToString();
        var nic = Guard(() => NicMacChoice.For(MacAddress, seedMac, request.CloudInitPath));
        if (nic.FromSeed) WriteVerbose($"NIC MAC {nic.MacAddress}, from the seed.");
        request = request with { MacAddress = nic.MacAddress };
        if (ReadyPattern is not null && !Wait) ThrowArgumentError("VmReadyPatternWithoutWait", "-ReadyPattern is used with -Wait.", ReadyPattern);

        using var db = OpenState();
        var lifecycle = new VmLifecycle(db, Paths);
        try
        {
            VmLifecycle.Validate(request);
        }
        catch (Core.VmToolsException e)
        {
            ThrowTerminatingError(ToErrorRecord(e));
        }

        var what = Count == 1 ? $"VM '{Name ?? "(generated name)"}'" : $"{Count} VMs '{Name ?? "vm"}-1..{Count}'";
        if (!ShouldProcess(request.ImagePath, $"Start {what}")) return;

        var results = RunCore(ctx => lifecycle.StartAsync(request, ctx.Verbose, ctx.Cancellation));
        foreach (var r in results)
        {
            if (r.Error is not null)
            {
                WriteError(ToErrorRecord(r.Error));
                continue;
            }

            if (!Wait)
            {
                WriteObject(r.Vm);
                continue;
            }

            var ready = TryRunCore(ctx => lifecycle.WaitAsync(r.Vm.Name, ReadyPattern, TimeSpan.FromSeconds(Timeout), ctx.Cancellation, TimeSpan.FromSeconds(SilentConsoleWarning), ctx.Warning));
            if (ready is not null) WriteObject(ready);
        }
    }

    private string PathOf(object value, string parameter, params string[] properties)
    {
        var o = value is PSObject p ? p.BaseObject : value;
        if (o is string s) return s;
        if (o is FileSystemInfo fi) return fi.FullName;
        var ps = PSObject.AsPSObject(value);
        foreach (var name in properties)
        {
            if (ps.Properties[name]?.Value is { } v && v.ToString() is { Length: > 0 } path) return path;
        }

        ThrowArgumentError($"Vm{parameter}Invalid", $"-{parameter} takes a path or an object with a {string.Join(" or ", properties)} property; got {o.GetType().Name}.", value);
        return null!;
    }
}
