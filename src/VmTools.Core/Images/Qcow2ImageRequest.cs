namespace VmTools.Core.Images;

/// <summary>What New-Qcow2Image builds, and where.</summary>
public sealed record Qcow2ImageRequest(string OutputPath, Qcow2ImageSource Source)
{
    /// <summary>Virtual disk size; null sizes it to the content plus headroom.</summary>
    public long? Size { get; init; }

    public string Label { get; init; } = "rootfs";

    /// <summary>A root filesystem without /boot/vmlinuz-* is an error instead of a warning.</summary>
    public bool RequireKernel { get; init; }

    public bool Overwrite { get; init; }

    /// <summary>The engine address; null means DOCKER_HOST or the usual sockets.</summary>
    public string? EngineHost { get; init; }

    public Action<string>? Log { get; init; }

    public Action<string>? Warn { get; init; }
}
