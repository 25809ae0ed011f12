using System.Collections;
using System.Management.Automation;
using VmTools.Core.Host;
using VmTools.Core.Images;

namespace VmTools.Commands;

/// <summary>
/// Builds a bootable qcow2 base disk from a Containerfile, an engine image, or a rootfs tarball, keeping
/// the kernel and initrd from /boot beside it. Its output is what Get-Qcow2Cache -Build publishes.
/// </summary>
[Cmdlet(VerbsCommon.New, "Qcow2Image", SupportsShouldProcess = true, DefaultParameterSetName = ContainerfileSet)]
[OutputType(typeof(Qcow2Image))]
public sealed class NewQcow2ImageCommand : VmToolsCmdlet
{
    private const string ContainerfileSet = "Containerfile";
    private const string ImageSet = "Image";
    private const string RootfsSet = "Rootfs";

    /// <summary>Where the qcow2 goes; the kernel and initrd land beside it (disk.vmlinuz, disk.initrd.img).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = ContainerfileSet)]
    [ValidateNotNullOrEmpty]
    public string Containerfile { get; set; } = null!;

    /// <summary>The build context; defaults to the Containerfile's folder.</summary>
    [Parameter(ParameterSetName = ContainerfileSet)]
    [ValidateNotNullOrEmpty]
    public string? Context { get; set; }

    [Parameter(ParameterSetName = ContainerfileSet)]
    public Hashtable? BuildArgument { get; set; }

    /// <summary>Names for the built image in the engine (e.g. localhost/base:1), so later builds reuse it.</summary>
    [Parameter(ParameterSetName = ContainerfileSet)]
    [ValidateNotNullOrEmpty]
    public string[]? ImageTag { get; set; }

    [Parameter(ParameterSetName = ContainerfileSet)]
    public SwitchParameter NoCache { get; set; }

    /// <summary>The network for RUN steps, passed to the engine: host, or a network name (default: the engine's).</summary>
    [Parameter(ParameterSetName = ContainerfileSet)]
    [ValidateNotNullOrEmpty]
    public string? Network { get; set; }

    /// <summary>An image the engine has (or pulls when missing).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ImageSet)]
    [ValidateNotNullOrEmpty]
    public string Image { get; set; } = null!;

    /// <summary>Pull even when the engine has the image.</summary>
    [Parameter(ParameterSetName = ImageSet)]
    public SwitchParameter Pull { get; set; }

    /// <summary>A root filesystem tarball (tar, tar.gz, tar.zst); needs no engine.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RootfsSet)]
    [ValidateNotNullOrEmpty]
    public string RootfsPath { get; set; } = null!;

    /// <summary>Virtual disk size in GiB; default is the content plus 25% and 256 MiB.</summary>
    [Parameter]
    [ValidateRange(0.0625, 16384.0)]
    public double SizeGB { get; set; }

    /// <summary>The ext4 filesystem label (root=LABEL=... on the kernel command line).</summary>
    [Parameter]
    [ValidatePattern("^[A-Za-z0-9_.-]{1,16}$")]
    public string Label { get; set; } = "rootfs";

    /// <summary>Fail when the filesystem has no kernel under /boot, instead of warning.</summary>
    [Parameter]
    public SwitchParameter RequireKernel { get; set; }

    /// <summary>The engine address (unix:///path or tcp://host:port); default DOCKER_HOST.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? EngineHost { get; set; }

    /// <summary>Replace an existing disk at -Path.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessing()
    {
        var arguments = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in BuildArgument ?? new Hashtable()) arguments[e.Key.ToString()!] = e.Value?.ToString() ?? string.Empty;
        var request = Guard(() => Qcow2ImageRequest.Create(new Qcow2ImageInputs(ResolvePath(Path))
        {
            OutputPathAsWritten = Path,
            Containerfile = ParameterSetName == ContainerfileSet ? ResolvePath(Containerfile) : null,
            ContextDirectory = Context is null ? null : ResolvePath(Context),
            BuildArguments = arguments,
            ImageTags = ImageTag ?? Array.Empty<string>(),
            NoCache = NoCache,
            Network = Network,
            Image = ParameterSetName == ImageSet ? Image : null,
            Pull = Pull,
            RootfsArchive = ParameterSetName == RootfsSet ? ResolvePath(RootfsPath) : null,
            SizeGB = MyInvocation.BoundParameters.ContainsKey(nameof(SizeGB)) ? SizeGB : null,
            Label = Label,
            RequireKernel = RequireKernel,
            Overwrite = Force,
            EngineHost = EngineHost,
        }));

        if (!ShouldProcess(request.OutputPath, $"Build a bootable qcow2 from {request.Source}")) return;
        var image = RunCore(c => new Qcow2ImageBuilder(ProcessRunner.Instance).BuildAsync(request with { Log = c.Verbose, Warn = c.Warning }, c, c.Cancellation));
        WriteObject(image);
    }
}
