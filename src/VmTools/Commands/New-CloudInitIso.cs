using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;

namespace VmTools.Commands;

/// <summary>
/// Writes a NoCloud seed ISO (ISO 9660 + Joliet + Rock Ridge, label cidata) in-process, from a
/// <see cref="CloudInitConfig"/> or from a seed directory. The result binds to Start-FlightVm -CloudInit.
/// Many piped configs each get their own file from placeholders in -Path (<see cref="SeedImagePaths"/>).
/// </summary>
[Cmdlet(VerbsCommon.New, "CloudInitIso", SupportsShouldProcess = true, DefaultParameterSetName = ConfigSet)]
[OutputType(typeof(CloudInitIso))]
public sealed class NewCloudInitIsoCommand : VmToolsCmdlet
{
    private const string ConfigSet = "Config";
    private const string DirectorySet = "Directory";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ConfigSet)]
    public CloudInitConfig Config { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = DirectorySet)]
    public string SourceDirectory { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 0)]
    public string Path { get; set; } = null!;

    [Parameter]
    [ArgumentCompleter(typeof(VolumeLabelCompleter))]
    public string VolumeLabel { get; set; } = IsoImageOptions.NoCloudLabel;

    /// <summary>Replaces an existing file at -Path.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private SeedImagePaths? _paths;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (ParameterSetName == DirectorySet)
        {
            if (SeedImagePaths.ContainsPlaceholder(Path))
            {
                ThrowArgumentError("IsoPathPlaceholderNeedsConfig",
                    $"-Path '{Path}' has placeholders, which are filled from a config; -SourceDirectory images one directory to one -Path.", Path);
            }

            return;
        }

        _paths = Guard(() => SeedImagePaths.Parse(ResolvePath(Path)));
    }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == DirectorySet)
        {
            var source = ResolvePath(SourceDirectory);
            var output = ResolvePath(Path);
            if (!ShouldProcess(output, $"Write cloud-init seed image of {source}")) return;
            WriteObject(RunCoreHere(ctx => SeedImage.Write(source, output, Options, Force.IsPresent, ctx, ctx.Cancellation)));
            return;
        }

        string target;
        try
        {
            target = _paths!.Claim(Config);
        }
        catch (VmToolsException e)
        {
            WriteError(ToErrorRecord(e));
            return;
        }

        if (!ShouldProcess(target, $"Write cloud-init seed image for instance {Config.InstanceId}")) return;
        WriteObject(RunCoreHere(ctx => SeedImage.Write(Config, target, Options, Force.IsPresent, ctx, ctx.Cancellation)));
    }

    private IsoImageOptions Options => IsoImageOptions.FromEnvironment() with { VolumeLabel = VolumeLabel };
}
