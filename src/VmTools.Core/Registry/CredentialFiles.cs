using System.Text;
using System.Text.Json;
using VmTools.Core.Host;

namespace VmTools.Core.Registry;

/// <summary>
/// Finds stored registry logins the way podman and docker do: containers' auth.json
/// (<c>REGISTRY_AUTH_FILE</c>, <c>$XDG_RUNTIME_DIR/containers/auth.json</c>,
/// <c>~/.config/containers/auth.json</c>), then docker's <c>config.json</c> (<c>DOCKER_CONFIG</c>).
/// In each file a <c>credHelpers</c> entry for the registry wins, then a <c>credsStore</c>, then an inline
/// <c>auth</c> entry (docker's order; the inline entry also answers when the helper knows no login).
/// </summary>
public static class CredentialFiles
{
    public static IEnumerable<string> SearchPath(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var home = getEnv("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (getEnv("REGISTRY_AUTH_FILE") is { Length: > 0 } explicitFile) yield return explicitFile;
        if (getEnv("XDG_RUNTIME_DIR") is { Length: > 0 } run) yield return Path.Combine(run, "containers", "auth.json");
        yield return Path.Combine(getEnv("XDG_CONFIG_HOME") is { Length: > 0 } cfg ? cfg : Path.Combine(home, ".config"), "containers", "auth.json");
        yield return Path.Combine(getEnv("DOCKER_CONFIG") is { Length: > 0 } d ? d : Path.Combine(home, ".docker"), "config.json");
    }

    public static RegistryCredential? Find(ImageReference reference, Func<string, string?>? getEnv = null, ICommandRunner? runner = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        foreach (var file in SearchPath(getEnv))
        {
            if (!File.Exists(file)) continue;
            var found = FindIn(file, reference, getEnv, runner ?? ProcessRunner.Instance);
            if (found is not null) return found;
        }

        return null;
    }

    /// <summary>Looks up the most specific key: <c>registry/repo/path</c> down to <c>registry</c>, as containers-auth.json(5) says.</summary>
    public static RegistryCredential? FindIn(string file, ImageReference reference) => FindIn(file, reference, Environment.GetEnvironmentVariable, ProcessRunner.Instance);

    public static RegistryCredential? FindIn(string file, ImageReference reference, Func<string, string?> getEnv, ICommandRunner runner)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(file));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            // The file's content is never echoed: it holds secrets.
            throw new VmToolsException("RegistryAuthFileInvalid", FailureKind.InvalidData, $"Cannot read registry credentials from '{file}': {e.GetType().Name}.") { Target = file };
        }

        using (doc)
        {
            if (HelperFor(doc.RootElement, reference) is { } helper
                && CredentialHelper.Get(helper.Name, helper.ServerUrl, getEnv, runner, file) is { } fromHelper)
            {
                return fromHelper;
            }

            if (!doc.RootElement.TryGetProperty("auths", out var auths) || auths.ValueKind != JsonValueKind.Object) return null;
            foreach (var key in CandidateKeys(reference))
            {
                foreach (var entry in auths.EnumerateObject())
                {
                    if (!KeyMatches(entry.Name, key)) continue;
                    if (entry.Value.TryGetProperty("auth", out var auth) && auth.GetString() is { Length: > 0 } b64)
                    {
                        string decoded;
                        try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(b64)); }
                        catch (FormatException) { continue; }
                        var colon = decoded.IndexOf(':');
                        if (colon <= 0) continue;
                        return new RegistryCredential(decoded[..colon], decoded[(colon + 1)..]) { Source = file };
                    }
                }
            }
        }

        return null;
    }

    /// <summary>The helper docker would ask: credHelpers keyed by registry host, else credsStore; and the server it passes on stdin.</summary>
    private static (string Name, string ServerUrl)? HelperFor(JsonElement root, ImageReference reference)
    {
        var server = reference.Registry == ImageReference.DockerHub ? "https://index.docker.io/v1/" : reference.Registry;
        if (root.TryGetProperty("credHelpers", out var helpers) && helpers.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in helpers.EnumerateObject())
            {
                if ((KeyMatches(entry.Name, reference.Registry) || KeyMatches(entry.Name, server)) && entry.Value.GetString() is { Length: > 0 } name)
                {
                    return (name, server);
                }
            }
        }

        return root.TryGetProperty("credsStore", out var store) && store.ValueKind == JsonValueKind.String && store.GetString() is { Length: > 0 } storeName
            ? (storeName, server) : null;
    }

    private static IEnumerable<string> CandidateKeys(ImageReference reference)
    {
        var parts = reference.Repository.Split('/');
        for (var n = parts.Length; n >= 1; n--) yield return reference.Registry + "/" + string.Join('/', parts.Take(n));
        yield return reference.Registry;
        if (reference.Registry == ImageReference.DockerHub)
        {
            yield return "https://index.docker.io/v1/";
            yield return "index.docker.io";
        }
    }

    private static bool KeyMatches(string stored, string wanted)
    {
        var s = stored;
        if (s.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) s = s[8..];
        else if (s.StartsWith("http://", StringComparison.OrdinalIgnoreCase)) s = s[7..];
        if (wanted.StartsWith("https://", StringComparison.Ordinal)) return string.Equals(stored, wanted, StringComparison.OrdinalIgnoreCase);
        return string.Equals(s.TrimEnd('/'), wanted, StringComparison.OrdinalIgnoreCase);
    }
}
