using System.Collections;
using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>Changes a volume's recorded metadata: keys set, a $null value removes its key, -Replace drops the keys not named.</summary>
[Cmdlet(VerbsCommon.Set, "VmVolume", SupportsShouldProcess = true)]
[OutputType(typeof(Volume))]
public sealed class SetVmVolumeCommand : VolumeCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("VolumeId")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Id { get; set; } = null!;

    [Parameter(Mandatory = true)]
    public Hashtable Metadata { get; set; } = null!;

    /// <summary>The metadata becomes exactly -Metadata (keys not named are removed).</summary>
    [Parameter]
    public SwitchParameter Replace { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Metadata) changes[e.Key.ToString()!] = e.Value?.ToString();
        foreach (var id in ExpandVolumeIds(Id))
        {
            if (!ShouldProcess($"volume '{id}'", Replace ? "Replace metadata" : "Set metadata")) continue;
            var volume = WithStore((store, _) => Task.FromResult(store.SetMetadata(id, changes, Replace)));
            if (volume is not null && PassThru) WriteObject(volume);
        }
    }
}
