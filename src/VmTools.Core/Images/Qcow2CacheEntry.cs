namespace VmTools.Core.Images;

/// <summary>
/// What Get-Qcow2Cache returns: where the base disk is and how it got there. <see cref="Path"/> is the
/// disk Start-FlightVm boots (bound by property name); KernelPath/InitrdPath ride along for direct boot.
/// </summary>
public sealed record Qcow2CacheEntry
{
    public required string Reference { get; init; }
    public string? Tag { get; init; }
    public string? Digest { get; init; }
    public string? LayerDigest { get; init; }
    public string? Path { get; init; }
    public long Size { get; init; }
    public CacheStatus Status { get; init; }
    public required string Source { get; init; }
    public long BytesDownloaded { get; init; }
    public string? KernelPath { get; init; }
    public string? InitrdPath { get; init; }
    public TimeSpan Duration { get; init; }

    public override string ToString() => $"{Status} {Reference}";
}
