namespace VmTools.Core.Images;

/// <summary>
/// A bootable base disk New-Qcow2Image made. <see cref="Path"/>, <see cref="KernelPath"/> and
/// <see cref="InitrdPath"/> are what Get-Qcow2Cache -Build publishes and Start-FlightVm boots.
/// </summary>
public sealed record Qcow2Image
{
    public required string Path { get; init; }
    public string? KernelPath { get; init; }
    public string? InitrdPath { get; init; }
    public string? KernelVersion { get; init; }

    /// <summary>Bytes of the qcow2 file.</summary>
    public long Size { get; init; }

    /// <summary>Bytes the guest sees.</summary>
    public long VirtualSize { get; init; }

    /// <summary>The engine's image id the filesystem came from; null for a rootfs tarball.</summary>
    public string? ImageId { get; init; }

    public required string Source { get; init; }
    public int Files { get; init; }
    public long ContentBytes { get; init; }
    public TimeSpan Duration { get; init; }

    public override string ToString() => Path;
}
