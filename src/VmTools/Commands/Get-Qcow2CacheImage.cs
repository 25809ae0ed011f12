using System.Management.Automation;
using VmTools.Core;
using VmTools.Core.Images;

namespace VmTools.Commands;

/// <summary>Lists the images in the local store: digest, size on disk, references, first/last use and the VMs built on each.</summary>
[Cmdlet(VerbsCommon.Get, "Qcow2CacheImage", DefaultParameterSetName = "Reference")]
[OutputType(typeof(CachedImage))]
public sealed class GetQcow2CacheImageCommand : VmToolsCmdlet
{
    /// <summary>registry/repository[:tag|@digest], wildcards allowed; a literal without tag names every tag of the repository.</summary>
    [Parameter(Position = 0, ParameterSetName = "Reference")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Reference { get; set; }

    /// <summary>Layer or manifest digest (sha256:…), wildcards allowed.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Digest", ValueFromPipelineByPropertyName = true)]
    [Alias("LayerDigest")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Digest { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var catalog = new ImageCatalog(db, Paths);
        var images = Guard(() => catalog.List(Digest, Reference));
        WriteObject(images, enumerateCollection: true);
        foreach (var literal in (Digest ?? Reference ?? Array.Empty<string>()).Where(p => !new ReferencePattern(p).HasWildcards))
        {
            if (Guard(() => catalog.List(Digest is null ? null : new[] { literal }, Reference is null ? null : new[] { literal })).Count > 0) continue;
            WriteError(ToErrorRecord(new VmToolsException("Qcow2CacheImageNotFound", FailureKind.NotFound,
                $"The local store holds no image matching '{literal}'. Get-Qcow2CacheImage without arguments lists them all.") { Target = literal }));
        }
    }
}
