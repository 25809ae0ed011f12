using System.Management.Automation;
using VmTools.Core.Volumes;

namespace VmTools.Commands;

/// <summary>
/// Records a volume pool once: creates a sparse file vdev and a zfs pool on it, or imports the pool
/// when the file already exists. Volume cmdlets never create a pool implicitly; they use this record.
/// </summary>
[Cmdlet(VerbsData.Initialize, "VmVolumePool", SupportsShouldProcess = true)]
[OutputType(typeof(VolumePool))]
public sealed class InitializeVmVolumePoolCommand : VolumeCmdlet
{
    /// <summary>The record's name; volume cmdlets use "default" unless told otherwise with -Pool.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = VolumePool.DefaultName;

    /// <summary>The zfs pool name.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string PoolName { get; set; } = "vmtools";

    /// <summary>The file vdev; created sparse when absent, imported when present.</summary>
    [Parameter]
    public string? VdevPath { get; set; }

    /// <summary>The vdev size in bytes; default 70% of the filesystem holding it (100 GB when unreadable).</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long Size { get; set; }

    /// <summary>Where volumes are mounted (mnt/&lt;type&gt;/&lt;id&gt;).</summary>
    [Parameter]
    public string? WorkingDirectory { get; set; }

    protected override void EndProcessing()
    {
        var root = Path.Combine(Paths.StateDirectory, "volumes", "zfs");
        var pool = new VolumePool
        {
            Name = Name,
            PoolName = PoolName,
            VdevPath = VdevPath is null ? Path.Combine(root, "vdev", PoolName + ".vdev") : ResolvePath(VdevPath),
            VdevSizeBytes = Size,
            WorkingDirectory = WorkingDirectory is null ? root : ResolvePath(WorkingDirectory),
        };
        if (!ShouldProcess($"zfs pool '{pool.PoolName}' on '{pool.VdevPath}'", "Initialize volume pool")) return;
        WriteObject(WithStoreOrStop((store, ctx) => store.InitializePoolAsync(pool, ctx.Cancellation)));
    }
}
