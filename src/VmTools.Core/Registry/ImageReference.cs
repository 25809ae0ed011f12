using System.Net;
using System.Text.RegularExpressions;

namespace VmTools.Core.Registry;

/// <summary>
/// A parsed image reference, <c>[registry/]repository[:tag][@digest]</c>, normalised the way
/// docker and podman do (no registry → docker.io, one path component → library/).
/// </summary>
public sealed partial record ImageReference(string Registry, string Repository, string? Tag, string? Digest)
{
    public const string DockerHub = "docker.io";

    public string Name => $"{Registry}/{Repository}";

    /// <summary>The host the registry API is served from (docker.io is an alias).</summary>
    public string ApiHost => Registry == DockerHub ? "registry-1.docker.io" : Registry;

    /// <summary>Tag or digest, whichever addresses the manifest (digest wins).</summary>
    public string ManifestKey => Digest ?? Tag ?? "latest";

    public bool IsLoopback
    {
        get
        {
            var host = HostWithoutPort(Registry);
            if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
            return IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip);
        }
    }

    public ImageReference WithTag(string tag) => this with { Tag = ValidateTag(tag), Digest = null };

    public ImageReference WithDigest(string digest) => this with { Digest = ContentDigest.Parse(digest).ToString() };

    public override string ToString() => Name + (Tag is null ? string.Empty : ":" + Tag) + (Digest is null ? string.Empty : "@" + Digest);

    public static ImageReference Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw Invalid(text, "it is empty");
        if (UserInfo.IsIn(text)) throw Invalid(text, "it carries a user name or password before the host; pass credentials with -Credential or a containers auth file");
        var rest = text.Trim();
        string? digest = null;
        var at = rest.IndexOf('@');
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            if (!ContentDigest.TryParse(digest, out _)) throw Invalid(text, $"'{digest}' is not a digest (expected sha256:<64 hex>)");
            rest = rest[..at];
        }

        string? tag = null;
        var lastSlash = rest.LastIndexOf('/');
        var colon = rest.LastIndexOf(':');
        if (colon > lastSlash)
        {
            tag = rest[(colon + 1)..];
            if (!TagPattern().IsMatch(tag)) throw Invalid(text, $"'{tag}' is not a valid tag");
            rest = rest[..colon];
        }

        var parts = rest.Split('/');
        string registry;
        if (parts.Length > 1 && (parts[0].Contains('.') || parts[0].Contains(':') || parts[0] == "localhost" || parts[0].StartsWith('[')))
        {
            registry = parts[0].ToLowerInvariant();
            parts = parts[1..];
        }
        else
        {
            registry = DockerHub;
            if (parts.Length == 1) parts = new[] { "library", parts[0] };
        }

        if (registry is "index.docker.io" or "registry-1.docker.io") registry = DockerHub;
        foreach (var p in parts)
        {
            if (!ComponentPattern().IsMatch(p)) throw Invalid(text, $"repository component '{p}' must be lower-case letters, digits and separators");
        }

        var repository = string.Join('/', parts);
        if (repository.Length > 255) throw Invalid(text, "the repository name is longer than 255 characters");
        return new ImageReference(registry, repository, tag, digest);
    }

    public static bool TryParse(string text, out ImageReference? reference)
    {
        try { reference = Parse(text); return true; }
        catch (VmToolsException) { reference = null; return false; }
    }

    public static string ValidateTag(string tag)
    {
        if (!TagPattern().IsMatch(tag ?? string.Empty))
        {
            throw new VmToolsException("ImageTagInvalid", FailureKind.InvalidArgument,
                $"'{tag}' is not a valid tag: up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'.") { Target = tag };
        }

        return tag!;
    }

    private static string HostWithoutPort(string registry)
    {
        if (registry.StartsWith('[')) return registry[..(registry.IndexOf(']') + 1)];
        var c = registry.LastIndexOf(':');
        return c > 0 ? registry[..c] : registry;
    }

    private static VmToolsException Invalid(string text, string why)
        => new("ImageReferenceInvalid", FailureKind.InvalidArgument, $"'{UserInfo.Redact(text)}' is not a valid image reference: {why}.") { Target = UserInfo.Redact(text) };

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentPattern();
}
