using System.Management.Automation;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.Images;
using VmTools.Core.Registry;

namespace VmTools.Commands;

/// <summary>
/// Publishes a qcow2 to the registry cache as a containerDisk image, tagged &lt;prefix&gt;-&lt;commit&gt; and,
/// from a clean git tree, &lt;prefix&gt;-latest. Blobs the registry already has are not uploaded again.
/// </summary>
[Cmdlet(VerbsData.Save, "Qcow2Cache", SupportsShouldProcess = true)]
[OutputType(typeof(PublishResult))]
public sealed class SaveQcow2CacheCommand : Qcow2CacheCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>Explicit tags instead of &lt;prefix&gt;-&lt;commit&gt; (+ -latest when clean).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? KernelPath { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? InitrdPath { get; set; }

    [Parameter]
    public LayerCompression Compression { get; set; } = LayerCompression.None;

    /// <summary>Publish as this os/arch entry of a multi-arch index (created or updated at each tag).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Platform { get; set; }

    protected override void ProcessRecord()
    {
        if (Compression == LayerCompression.Gzip) ThrowArgumentError("Qcow2CacheCompressionUnsupported", "Publishing supports -Compression None or Zstd.", Compression);
        var disk = ResolvePath(Path);
        if (!File.Exists(disk))
        {
            ThrowTerminatingError(new ErrorRecord(new VmToolsException("ImageSourceNotFound", FailureKind.NotFound, $"'{disk}' does not exist."), "ImageSourceNotFound", ErrorCategory.ObjectNotFound, disk));
        }

        var repository = ParseRepository();
        var revision = RunCore(c => SourceRevision.ReadAsync(ProcessRunner.Instance, CurrentDirectory, c.Cancellation));
        string[] tags;
        if (Tag is not null)
        {
            tags = Tag.Select(t => Guard(() => ValidTag(t))).ToArray();
        }
        else
        {
            tags = revision.IsClean ? new[] { Settings.CommitTag(revision), Settings.LatestTag } : new[] { Settings.CommitTag(revision) };
            if (!revision.IsClean) WriteVerbose($"Git tree is {revision.TreeState}: not updating {Settings.LatestTag}.");
        }

        var platform = Platform is null ? OciPlatform.Current : Guard(() => OciPlatform.Parse(Platform));
        var boot = new List<BootFile>();
        if (KernelPath is not null) boot.Add(new BootFile(ResolvePath(KernelPath), "vmlinuz"));
        if (InitrdPath is not null) boot.Add(new BootFile(ResolvePath(InitrdPath), "initrd.img"));
        foreach (var b in boot.Where(b => !File.Exists(b.SourcePath)))
        {
            ThrowTerminatingError(new ErrorRecord(new VmToolsException("ImageSourceNotFound", FailureKind.NotFound, $"'{b.SourcePath}' does not exist."), "ImageSourceNotFound", ErrorCategory.ObjectNotFound, b.SourcePath));
        }

        var target = string.Join(", ", tags.Select(t => repository.WithTag(t).ToString()));
        if (!ShouldProcess(target, $"Publish {disk}")) return;
        using var db = OpenState();
        var publisher = new Qcow2CachePublisher(db, Paths);
        var result = RunCore(c => publisher.PublishAsync(new PublishRequest(disk, repository, tags, revision)
        {
            BootFiles = boot,
            Compression = Compression,
            Platform = platform,
            AsIndex = Platform is not null,
            Created = PublishTime.For(disk),
            RegistryEnabled = Settings.RegistryEnabled,
            ClientOptions = ClientOptions(c.Verbose),
        }, c, c.Cancellation));
        WriteObject(result);
    }

}
