namespace VmTools.Core.Volumes;

/// <summary>What New-VmVolume asks for. Everything is optional: a nameless data volume on the default pool.</summary>
public sealed record VolumeRequest
{
    public string? Name { get; init; }

    public string Type { get; init; } = VolumeTypes.Data;

    public string Pool { get; init; } = VolumePool.DefaultName;

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public long? QuotaBytes { get; init; }
}
