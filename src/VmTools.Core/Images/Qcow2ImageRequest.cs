using VmTools.Core.Engine;
using VmTools.Core.Registry;

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

    /// <summary>
    /// Checks <paramref name="inputs"/> before anything is built, in the order a caller fixes them: the output
    /// path, the source's files, then the engine address (a rootfs archive needs no engine unless one is named).
    /// </summary>
    public static Qcow2ImageRequest Create(Qcow2ImageInputs inputs)
    {
        var output = inputs.OutputPath;
        if (Directory.Exists(output))
        {
            throw new VmToolsException("Qcow2ImagePathIsDirectory", FailureKind.InvalidArgument,
                $"-Path '{output}' is a folder; give the qcow2 file's path.") { Target = inputs.OutputPathAsWritten ?? output };
        }

        if (File.Exists(output) && !inputs.Overwrite)
        {
            throw new VmToolsException("Qcow2ImageExists", FailureKind.ResourceExists, $"'{output}' already exists; pass -Force to replace it.") { Target = output };
        }

        var source = SourceOf(inputs);
        if (inputs.EngineHost is not null || source is not Qcow2ImageSource.RootfsArchive) EngineEndpoint.Resolve(inputs.EngineHost);
        return new Qcow2ImageRequest(output, source)
        {
            Size = inputs.SizeGB is { } gb ? (long)(gb * (1L << 30)) / (1 << 20) * (1 << 20) : null,
            Label = inputs.Label,
            RequireKernel = inputs.RequireKernel,
            Overwrite = inputs.Overwrite,
            EngineHost = inputs.EngineHost,
        };
    }

    private static Qcow2ImageSource SourceOf(Qcow2ImageInputs inputs)
    {
        if (inputs.Image is { } image)
        {
            if (!ImageReference.TryParse(image, out _))
            {
                throw new VmToolsException("ContainerImageReferenceInvalid", FailureKind.InvalidArgument, $"'{image}' is not an image reference.") { Target = image };
            }

            return new Qcow2ImageSource.Image(image, inputs.Pull);
        }

        if (inputs.RootfsArchive is { } archive)
        {
            if (!File.Exists(archive)) throw InputNotFound($"Root filesystem archive '{archive}' does not exist.", archive);
            return new Qcow2ImageSource.RootfsArchive(archive);
        }

        var file = inputs.Containerfile ?? throw new ArgumentException("No source: a Containerfile, an image or a rootfs archive.", nameof(inputs));
        if (Directory.Exists(file))
        {
            file = new[] { "Containerfile", "Dockerfile" }.Select(n => Path.Combine(file, n)).FirstOrDefault(File.Exists) ?? Path.Combine(file, "Containerfile");
        }

        if (!File.Exists(file)) throw InputNotFound($"Containerfile '{file}' does not exist.", file);
        var context = inputs.ContextDirectory ?? Path.GetDirectoryName(file)!;
        if (!Directory.Exists(context)) throw InputNotFound($"Build context folder '{context}' does not exist.", context);
        return new Qcow2ImageSource.Containerfile(new EngineBuild(context, file)
        {
            Tags = inputs.ImageTags,
            BuildArguments = inputs.BuildArguments,
            NoCache = inputs.NoCache,
            NetworkMode = inputs.Network,
        });
    }

    private static VmToolsException InputNotFound(string message, string target)
        => new("Qcow2ImageInputNotFound", FailureKind.NotFound, message) { Target = target };
}
