namespace VmTools.Core.Images;

/// <summary>
/// What New-Qcow2Image was given, with paths resolved against the caller's location. Exactly one of
/// <see cref="Containerfile"/>, <see cref="Image"/> and <see cref="RootfsArchive"/> names the source;
/// <see cref="Qcow2ImageRequest.Create"/> checks the rest and turns it into a request.
/// </summary>
public sealed record Qcow2ImageInputs(string OutputPath)
{
    /// <summary>The output path as the caller wrote it, named in the error when it is a folder. Null: <see cref="OutputPath"/>.</summary>
    public string? OutputPathAsWritten { get; init; }

    /// <summary>A Containerfile, or a folder holding a Containerfile or Dockerfile.</summary>
    public string? Containerfile { get; init; }

    /// <summary>The build context; null: the Containerfile's folder.</summary>
    public string? ContextDirectory { get; init; }

    public IReadOnlyDictionary<string, string> BuildArguments { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    public IReadOnlyList<string> ImageTags { get; init; } = Array.Empty<string>();

    public bool NoCache { get; init; }

    public string? Network { get; init; }

    /// <summary>An image reference the engine has or pulls.</summary>
    public string? Image { get; init; }

    public bool Pull { get; init; }

    public string? RootfsArchive { get; init; }

    /// <summary>Virtual disk size in GiB, rounded down to whole MiB; null sizes it to the content.</summary>
    public double? SizeGB { get; init; }

    public string Label { get; init; } = "rootfs";

    public bool RequireKernel { get; init; }

    /// <summary>Replace an existing disk at the output path.</summary>
    public bool Overwrite { get; init; }

    public string? EngineHost { get; init; }
}
