using System.Text;
using System.Text.Json;

namespace VmTools.Core.Registry;

/// <summary>
/// Finds stored registry logins the way podman and docker do: containers' auth.json
/// (<c>REGISTRY_AUTH_FILE</c>, <c>$XDG_RUNTIME_DIR/containers/auth.json</c>,
/// <c>~/.config/containers/auth.json</c>), then docker's <c>config.json</c> (<c>DOCKER_CONFIG</c>).
/// Only inline <c>auth</c> entries are read; credential helpers are not run.
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

    public static RegistryCredential? Find(ImageReference reference, Func<string, string?>? getEnv = null)
    {
        foreach (var file in SearchPath(getEnv))
        {
            if (!File.Exists(file)) continue;
            var found = FindIn(file, reference);
            if (found is not null) return found;
        }

        return null;
    }

    /// <summary>Looks up the most specific key: <c>registry/repo/path</c> down to <c>registry</c>, as containers-auth.json(5) says.</summary>
    public static RegistryCredential? FindIn(string file, ImageReference reference)
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
