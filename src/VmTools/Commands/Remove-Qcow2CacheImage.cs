using System.Management.Automation;
using VmTools.Core;
using VmTools.Core.Images;

namespace VmTools.Commands;

/// <summary>
/// Removes images from the local store, named (digest or reference, or piped from Get-Qcow2CacheImage) or
/// chosen by pruning (-OlderThan, -KeepLatest per repository, -MaxSizeGB). An image a VM record uses stays
/// unless -Force; one a pull is writing or a hit is handing out stays (a warning says so), and a prune keeps
/// an image used after it chose it. Only the store's own folder is deleted.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "Qcow2CacheImage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = "Digest")]
[OutputType(typeof(CachedImageRemoval))]
public sealed class RemoveQcow2CacheImageCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Digest", ValueFromPipelineByPropertyName = true)]
    [Alias("LayerDigest")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Digest { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = "Reference")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Reference { get; set; } = null!;

    /// <summary>Prune images last used longer ago than this (a TimeSpan, or a number of days).</summary>
    [Parameter(ParameterSetName = "Prune")]
    [TimeSpanOrDays]
    public TimeSpan? OlderThan { get; set; }

    /// <summary>Prune all but the N most recently used images of each repository.</summary>
    [Parameter(ParameterSetName = "Prune")]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepLatest { get; set; }

    /// <summary>Prune least recently used images until the store takes at most this many GiB.</summary>
    [Parameter(ParameterSetName = "Prune")]
    [ValidateRange(0.0, double.MaxValue)]
    public double? MaxSizeGB { get; set; }

    /// <summary>Also remove images VM records still use (their overlays will no longer start).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private long _freed;
    private int _removed;

    protected override void ProcessRecord()
    {
        if (ParameterSetName == "Prune") return;
        using var db = OpenState();
        var catalog = new ImageCatalog(db, Paths);
        var names = ParameterSetName == "Digest" ? Digest : Reference;
        foreach (var name in names)
        {
            var matched = Guard(() => ParameterSetName == "Digest" ? catalog.List(new[] { name }) : catalog.List(references: new[] { name }));
            if (matched.Count == 0 && !new ReferencePattern(name).HasWildcards)
            {
                WriteError(ToErrorRecord(new VmToolsException("Qcow2CacheImageNotFound", FailureKind.NotFound,
                    $"The local store holds no image matching '{name}'. Get-Qcow2CacheImage lists them.") { Target = name }));
            }

            foreach (var image in matched) Remove(db, image, pruning: false);
        }
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName == "Prune")
        {
            using var db = OpenState();
            var request = new PruneRequest { OlderThan = OlderThan, KeepLatest = KeepLatest, MaxBytes = MaxSizeGB is { } gb ? (long)(gb * 1024 * 1024 * 1024) : null };
            var chosen = new ImagePruner(db, Paths).Select(request, WriteVerbose);
            if (chosen.Count == 0) WriteVerbose("Nothing to prune.");
            foreach (var image in chosen) Remove(db, image, pruning: true);
        }

        WriteVerbose($"Removed {_removed} image(s), freeing {CoreContext.Bytes(_freed)}.");
    }

    private void Remove(Core.State.StateDb db, CachedImage image, bool pruning)
    {
        var references = image.References.Count == 0 ? "no references" : string.Join(", ", image.References);
        if (!ShouldProcess(image.LayerDigest, $"Remove cached image {image.LayerDigest} ({CoreContext.Bytes(image.Size)}; {references})")) return;
        try
        {
            var pruner = new ImagePruner(db, Paths);
            var removal = pruning ? pruner.RemoveChosen(image, Force) : pruner.Remove(image.LayerDigest, Force);
            if (removal is null)
            {
                WriteVerbose($"Keeping {image.LayerDigest}: it was used after the prune chose it.");
                return;
            }

            _freed += removal.BytesFreed;
            _removed++;
            WriteVerbose($"Removed {image.LayerDigest}; {CoreContext.Bytes(removal.BytesFreed)} freed.");
            if (PassThru) WriteObject(removal);
        }
        catch (VmToolsException e) when (e.ErrorId == "Qcow2CacheImageBusy" && pruning)
        {
            WriteWarning(e.Message);
        }
        catch (VmToolsException e)
        {
            WriteError(ToErrorRecord(e));
        }
    }
}
