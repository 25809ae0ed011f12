using System.Collections;
using System.Management.Automation;
using VmTools.Core.Engine;
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
        var output = ResolvePath(Path);
        if (Directory.Exists(output)) ThrowArgumentError("Qcow2ImagePathIsDirectory", $"-Path '{output}' is a folder; give the qcow2 file's path.", Path);
        if (File.Exists(output) && !Force)
        {
            ThrowTerminatingError(new ErrorRecord(new Core.VmToolsException("Qcow2ImageExists", Core.FailureKind.ResourceExists,
                $"'{output}' already exists; pass -Force to replace it.") { Target = output }, "Qcow2ImageExists", ErrorCategory.ResourceExists, output));
        }

        var source = Source();
        if (EngineHost is not null || source is not Qcow2ImageSource.RootfsArchive)
        {
            try { EngineEndpoint.Resolve(EngineHost); }
            catch (Core.VmToolsException e) { ThrowTerminatingError(ToErrorRecord(e)); }
        }

        if (!ShouldProcess(output, $"Build a bootable qcow2 from {source}")) return;
        var request = new Qcow2ImageRequest(output, source)
        {
            Size = MyInvocation.BoundParameters.ContainsKey(nameof(SizeGB)) ? (long)(SizeGB * (1L << 30)) / (1 << 20) * (1 << 20) : null,
            Label = Label,
            RequireKernel = RequireKernel,
            Overwrite = Force,
            EngineHost = EngineHost,
        };
        var image = RunCore(c => new Qcow2ImageBuilder(ProcessRunner.Instance).BuildAsync(request with { Log = c.Verbose, Warn = c.Warning }, c, c.Cancellation));
        WriteObject(image);
    }

    private Qcow2ImageSource Source()
    {
        switch (ParameterSetName)
        {
            case ImageSet:
                if (!Core.Registry.ImageReference.TryParse(Image, out _)) ThrowArgumentError("ContainerImageReferenceInvalid", $"'{Image}' is not an image reference.", Image);
                return new Qcow2ImageSource.Image(Image, Pull);
            case RootfsSet:
                var archive = ResolvePath(RootfsPath);
                if (!File.Exists(archive)) NotFound($"Root filesystem archive '{archive}' does not exist.", archive);
                return new Qcow2ImageSource.RootfsArchive(archive);
            default:
                var file = ResolvePath(Containerfile);
                if (Directory.Exists(file))
                {
                    file = new[] { "Containerfile", "Dockerfile" }.Select(n => System.IO.Path.Combine(file, n)).FirstOrDefault(File.Exists) ?? System.IO.Path.Combine(file, "Containerfile");
                }

                if (!File.Exists(file)) NotFound($"Containerfile '{file}' does not exist.", file);
                var context = Context is null ? System.IO.Path.GetDirectoryName(file)! : ResolvePath(Context);
                if (!Directory.Exists(context)) NotFound($"Build context folder '{context}' does not exist.", context);
                var arguments = new Dictionary<string, string>(StringComparer.Ordinal);
                if (BuildArgument is not null)
                {
                    foreach (DictionaryEntry e in BuildArgument) arguments[e.Key.ToString()!] = e.Value?.ToString() ?? string.Empty;
                }

                return new Qcow2ImageSource.Containerfile(new EngineBuild(context, file)
                {
                    Tags = ImageTag ?? Array.Empty<string>(),
                    BuildArguments = arguments,
                    NoCache = NoCache,
                    NetworkMode = Network,
                });
        }
    }

    private void NotFound(string message, string target)
        => ThrowTerminatingError(new ErrorRecord(new Core.VmToolsException("Qcow2ImageInputNotFound", Core.FailureKind.NotFound, message) { Target = target },
            "Qcow2ImageInputNotFound", ErrorCategory.ObjectNotFound, target));
}
