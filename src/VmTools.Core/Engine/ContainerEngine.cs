using System.Net;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using VmTools.Core.Host;
using VmTools.Core.Registry;

namespace VmTools.Core.Engine;

/// <summary>
/// A Docker-API container engine (dockerd, or podman's API service) reached through Docker.DotNet:
/// builds images, pulls them, and streams an image's filesystem out through a short-lived container
/// that is never started and always removed.
/// </summary>
public sealed class ContainerEngine : IDisposable
{
    /// <summary>Label on the containers VmTools creates for exports, so leftovers are recognisable.</summary>
    public const string ExportLabel = "org.vmtools.export";

    /// <summary>The API version podman's compat service and every current dockerd speak.</summary>
    private static readonly System.Version ApiVersion = new(1, 41);

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly DockerClientConfiguration _configuration;
    private readonly DockerClient _client;

    private ContainerEngine(EngineEndpoint endpoint, DockerClientConfiguration configuration, DockerClient client, string description)
    {
        Endpoint = endpoint;
        _configuration = configuration;
        _client = client;
        Description = description;
    }

    public EngineEndpoint Endpoint { get; }

    /// <summary>What answered, e.g. "Podman Engine 4.3.1 (API 1.41)".</summary>
    public string Description { get; }

    /// <summary>Connects and asks the engine for its version; no answer is <c>ContainerEngineUnreachable</c>.</summary>
    public static async Task<ContainerEngine> ConnectAsync(EngineEndpoint endpoint, CancellationToken ct)
    {
        // Builds and exports stream for minutes; the per-request timeout must not cut them off.
        var configuration = new DockerClientConfiguration(endpoint.Uri, null, Timeout.InfiniteTimeSpan);
        var client = configuration.CreateClient(ApiVersion);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(ConnectTimeout);
            var version = await client.System.GetVersionAsync(timeout.Token).ConfigureAwait(false);
            var name = version.Components?.FirstOrDefault()?.Name ?? "Docker Engine";
            return new ContainerEngine(endpoint, configuration, client, $"{name} {version.Version} (API {version.APIVersion})");
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            client.Dispose();
            configuration.Dispose();
            var why = e is OperationCanceledException ? $"no answer within {ConnectTimeout.TotalSeconds:0} s" : Innermost(e).Message;
            throw new VmToolsException("ContainerEngineUnreachable", FailureKind.ConnectionFailed,
                $"No container engine answers at {endpoint} ({why}). Start one, e.g. 'podman system service --time=0 unix:///run/podman/podman.sock', " +
                "and point DOCKER_HOST (or -EngineHost) at it.", e) { Target = endpoint.ToString() };
        }
    }

    /// <summary>Builds <paramref name="build"/> and returns the image id; a failed step is <c>Qcow2ImageBuildFailed</c> carrying the build log.</summary>
    public async Task<string> BuildAsync(EngineBuild build, Action<string>? log, IProgress<long>? sent, CancellationToken ct)
    {
        var containerfileName = build.ContainerfileInContext ?? BuildContextArchive.OutsideContainerfileName;
        var outside = build.ContainerfileInContext is null ? build.Containerfile : null;
        var parameters = new ImageBuildParameters
        {
            Dockerfile = containerfileName,
            Tags = build.Tags.ToList(),
            BuildArgs = build.BuildArguments.ToDictionary(kv => kv.Key, kv => kv.Value),
            Remove = true,
            ForceRemove = true,
            NoCache = build.NoCache,
            NetworkMode = build.NetworkMode,
        };

        var transcript = new StringBuilder();
        string? failure = null;
        string? imageId = null;
        string? shortId = null;
        var progress = new ImmediateProgress<JSONMessage>(m =>
        {
            if (!string.IsNullOrEmpty(m.Stream))
            {
                transcript.Append(m.Stream);
                foreach (var line in m.Stream.Split('\n', StringSplitOptions.RemoveEmptyEntries)) log?.Invoke(line.TrimEnd('\r'));
                const string built = "Successfully built ";
                if (m.Stream.StartsWith(built, StringComparison.Ordinal)) shortId = m.Stream[built.Length..].Trim();
            }

            if (m.Error?.Message is { Length: > 0 } error) failure = error;
            else if (!string.IsNullOrEmpty(m.ErrorMessage)) failure = m.ErrorMessage;
            if (m.Aux?.ExtensionData is { } aux && aux.TryGetValue("ID", out var id) && id?.ToString() is { Length: > 0 } text) imageId = text;
        });

        var (context, writing) = BuildContextArchive.Open(build.ContextDirectory, outside, ct);
        var counted = new CountingReadStream(context, sent);
        try
        {
            await _client.Images.BuildImageFromDockerfileAsync(parameters, counted, null, null, progress, ct).ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            failure = $"{(int)e.StatusCode} {e.ResponseBody}".Trim();
        }
        finally
        {
            await counted.DisposeAsync().ConfigureAwait(false);
            try { await writing.ConfigureAwait(false); }
            catch (Exception) when (failure is not null || ct.IsCancellationRequested) { /* the build's own failure says more */ }
        }

        ct.ThrowIfCancellationRequested();
        if (failure is not null) throw BuildFailed(build, failure, transcript.ToString());
        var reference = imageId ?? shortId ?? build.Tags.FirstOrDefault()
            ?? throw BuildFailed(build, "the engine reported no image id", transcript.ToString());
        return (await InspectAsync(reference, ct).ConfigureAwait(false))?.ID
            ?? throw BuildFailed(build, $"the built image '{reference}' is not in the engine", transcript.ToString());
    }

    /// <summary>The id of <paramref name="reference"/>, pulling it first if it is missing (or always with <paramref name="pull"/>).</summary>
    public async Task<string> ResolveImageAsync(string reference, bool pull, Action<string>? log, CancellationToken ct)
    {
        if (!pull && await InspectAsync(reference, ct).ConfigureAwait(false) is { } local) return local.ID;
        var parsed = ImageReference.Parse(reference);
        var messages = new StringBuilder();
        string? failure = null;
        var progress = new ImmediateProgress<JSONMessage>(m =>
        {
            if (!string.IsNullOrEmpty(m.Status) && m.Progress is null) { messages.AppendLine(m.Status); log?.Invoke(m.Status); }
            if (m.Error?.Message is { Length: > 0 } error) failure = error;
            else if (!string.IsNullOrEmpty(m.ErrorMessage)) failure = m.ErrorMessage;
        });
        try
        {
            await _client.Images.CreateImageAsync(new ImagesCreateParameters
            {
                FromImage = parsed.Name,
                // An empty tag would ask dockerd for every tag of the repository.
                Tag = parsed.Digest ?? parsed.Tag ?? "latest",
            }, null, progress, ct).ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            failure = $"{(int)e.StatusCode} {e.ResponseBody}".Trim();
        }

        if (failure is null && await InspectAsync(reference, ct).ConfigureAwait(false) is { } pulled) return pulled.ID;
        throw new VmToolsException("ContainerImagePullFailed", FailureKind.ResourceUnavailable,
            $"The engine could not pull '{reference}': {failure ?? "the image is not there afterwards"}") { Target = reference };
    }

    public async Task<ImageInspectResponse?> InspectAsync(string reference, CancellationToken ct)
    {
        try
        {
            return await _client.Images.InspectImageAsync(reference, ct).ConfigureAwait(false);
        }
        catch (DockerImageNotFoundException)
        {
            return null;
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Streams the image's merged filesystem as a tar into <paramref name="consume"/>: a container is
    /// created (never started), exported, and removed whatever happens, cancellation included.
    /// </summary>
    public async Task ExportFilesystemAsync(string imageId, Func<Stream, CancellationToken, Task> consume, CancellationToken ct)
    {
        var name = "vmtools-export-" + Guid.NewGuid().ToString("N")[..12];
        CreateContainerResponse created;
        try
        {
            created = await _client.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Image = imageId,
                Name = name,
                // FROM scratch images have no command and the API refuses a container without one; it never runs.
                Cmd = new List<string> { "/vmtools-export-never-runs" },
                Labels = new Dictionary<string, string> { [ExportLabel] = "true" },
                NetworkDisabled = true,
            }, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Cancelled mid-request: the engine may have created it anyway; its name is all we know.
            await RemoveContainerQuietlyAsync(name).ConfigureAwait(false);
            throw;
        }

        try
        {
            var stream = await _client.Containers.ExportContainerAsync(created.ID, ct).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                await consume(stream, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            await RemoveContainerQuietlyAsync(created.ID).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _client.Dispose();
        _configuration.Dispose();
    }

    private async Task RemoveContainerQuietlyAsync(string id)
    {
        // Runs on cancellation too, so it gets its own short deadline instead of the caller's token.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or OperationCanceledException or IOException)
        {
            // Nothing better to do here: the label lets a later run or the user find it.
        }
    }

    private static VmToolsException BuildFailed(EngineBuild build, string failure, string transcript)
    {
        const int maxLogChars = 8000;
        var log = transcript.Length > maxLogChars ? "..." + transcript[^maxLogChars..] : transcript;
        return new VmToolsException("Qcow2ImageBuildFailed", FailureKind.InvalidOperation,
            $"Building '{build.Containerfile}' failed: {failure.Trim()}\n--- build log ---\n{log.TrimEnd()}") { Target = build.Containerfile };
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }

    /// <summary>Reports on the calling thread, in order; <see cref="Progress{T}"/> would post to the thread pool and reorder.</summary>
    private sealed class ImmediateProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}

/// <summary>One image build: the context directory, the Containerfile, and what to pass the engine.</summary>
public sealed record EngineBuild(string ContextDirectory, string Containerfile)
{
    /// <summary>The Containerfile's path inside the context, or null when it lives outside it.</summary>
    public string? ContainerfileInContext
    {
        get
        {
            var relative = Path.GetRelativePath(ContextDirectory, Containerfile);
            return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? null : relative.Replace('\\', '/');
        }
    }

    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();

    public IReadOnlyDictionary<string, string> BuildArguments { get; init; } = new Dictionary<string, string>();

    public bool NoCache { get; init; }

    /// <summary>The network RUN steps get ("none", "host", a network name); null is the engine's default.</summary>
    public string? NetworkMode { get; init; }
}
