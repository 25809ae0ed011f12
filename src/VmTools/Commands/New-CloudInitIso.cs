using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;

namespace VmTools.Commands;

/// <summary>
/// Writes a NoCloud seed ISO (ISO 9660 + Joliet + Rock Ridge, label cidata) in-process, from a
/// <see cref="CloudInitConfig"/> or from a seed directory. The result binds to Start-FlightVm -CloudInit.
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

    protected override void ProcessRecord()
    {
        var target = ResolvePath(Path);
        var source = ParameterSetName == DirectorySet ? ResolvePath(SourceDirectory) : null;
        if (!ShouldProcess(target, source is null ? $"Write cloud-init seed image for instance {Config.InstanceId}" : $"Write cloud-init seed image of {source}")) return;
        var iso = RunCore(ctx =>
        {
            var options = IsoImageOptions.FromEnvironment() with { VolumeLabel = VolumeLabel };
            return source is null
                ? SeedImage.WriteAsync(Config, target, options, Force.IsPresent, ctx, ctx.Cancellation)
                : SeedImage.WriteAsync(source, target, options, Force.IsPresent, ctx, ctx.Cancellation);
        });
        WriteObject(iso);
    }
}
