namespace VmTools.Core.Engine;

/// <summary>
/// Where the Docker-API engine listens: the explicit host, else DOCKER_HOST, else the first of the
/// usual root sockets that exists (podman's, then dockerd's).
/// </summary>
public sealed record EngineEndpoint(Uri Uri)
{
    public const string EnvironmentVariable = "DOCKER_HOST";

    private static readonly string[] WellKnownSockets = { "/run/podman/podman.sock", "/var/run/docker.sock" };

    public static EngineEndpoint Resolve(string? host, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var text = string.IsNullOrWhiteSpace(host) ? environment(EnvironmentVariable) : host;
        if (string.IsNullOrWhiteSpace(text))
        {
            var socket = WellKnownSockets.FirstOrDefault(File.Exists) ?? WellKnownSockets[^1];
            return new EngineEndpoint(new Uri("unix://" + socket));
        }

        if (text.StartsWith('/')) text = "unix://" + text;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("unix" or "tcp" or "http" or "https"))
        {
            throw new VmToolsException("ContainerEngineHostInvalid", FailureKind.InvalidArgument,
                $"'{text}' is not an engine address; use unix:///path/to/socket or tcp://host:port (as DOCKER_HOST does).") { Target = text };
        }

        return new EngineEndpoint(uri);
    }

    public override string ToString() => Uri.Scheme == "unix" ? "unix://" + Uri.AbsolutePath : Uri.ToString();
}
