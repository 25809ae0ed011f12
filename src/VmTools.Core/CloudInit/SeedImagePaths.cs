using System.Text;
using System.Text.RegularExpressions;

namespace VmTools.Core.CloudInit;

/// <summary>
/// Where each config of one New-CloudInitIso pipeline is written: the -Path pattern with its
/// placeholders ({Hostname}, {InstanceId}, {MacAddress}) filled from the config. A path is handed
/// out once per pipeline, so two configs never overwrite each other's seed; a pattern without
/// placeholders serves the first config only. A placeholder value stays one file name in the
/// folder the pattern names: it can neither add a folder level nor climb out with "..".
/// </summary>
public sealed partial class SeedImagePaths
{
    /// <summary>Longest file name Linux filesystems take, in bytes.</summary>
    public const int MaxFileNameBytes = 255;

    private static readonly IReadOnlyDictionary<string, Func<CloudInitConfig, string>> Placeholders =
        new Dictionary<string, Func<CloudInitConfig, string>>(StringComparer.OrdinalIgnoreCase)
        {
            ["Hostname"] = c => c.Hostname,
            ["InstanceId"] = c => c.InstanceId,
            ["MacAddress"] = c => c.MacAddress,
        };

    private readonly string _pattern;
    private readonly Dictionary<string, string> _claimed = new(StringComparer.Ordinal);

    private SeedImagePaths(string pattern, bool hasPlaceholders)
    {
        _pattern = pattern;
        HasPlaceholders = hasPlaceholders;
    }

    public bool HasPlaceholders { get; }

    public static IReadOnlyCollection<string> PlaceholderNames => Placeholders.Keys.ToList();

    /// <summary>Checks every placeholder of a (resolved, absolute) path pattern; an unknown one is IsoPathPlaceholderUnknown.</summary>
    public static SeedImagePaths Parse(string pattern)
    {
        var names = PlaceholderPattern().Matches(pattern).Select(m => m.Groups[1].Value).ToList();
        if (names.FirstOrDefault(n => !Placeholders.ContainsKey(n)) is { } unknown)
        {
            throw new VmToolsException("IsoPathPlaceholderUnknown", FailureKind.InvalidArgument,
                $"-Path '{pattern}' has the placeholder {{{unknown}}}; known are {string.Join(", ", Placeholders.Keys.Select(k => "{" + k + "}"))}.") { Target = pattern };
        }

        return new SeedImagePaths(pattern, names.Count > 0);
    }

    /// <summary>A pattern holding placeholders, which only a config can fill (not a seed directory).</summary>
    public static bool ContainsPlaceholder(string path) => PlaceholderPattern().IsMatch(path);

    /// <summary>
    /// The path <paramref name="config"/>'s seed goes to, claimed for it. Fails for a value that is no
    /// file name (IsoPathPlaceholderInvalid), one that leaves its folder (IsoPathPlaceholderEscapes),
    /// a path an earlier config of this pipeline has (IsoPathCollision) and, for a pattern without
    /// placeholders, any config after the first (IsoPathNeedsPlaceholder).
    /// </summary>
    public string Claim(CloudInitConfig config)
    {
        var path = Expand(config);
        if (_claimed.TryGetValue(path, out var earlier))
        {
            throw HasPlaceholders
                ? new VmToolsException("IsoPathCollision", FailureKind.ResourceExists,
                    $"'{path}' is already the seed of instance '{earlier}' in this pipeline; instance '{config.InstanceId}' would replace it. Use a placeholder that differs, such as {{InstanceId}}.") { Target = path }
                : new VmToolsException("IsoPathNeedsPlaceholder", FailureKind.InvalidArgument,
                    $"-Path '{path}' names one file and was written for instance '{earlier}'; to write a seed per config, put a placeholder in -Path, such as 'seeds/{{Hostname}}.iso'.") { Target = path };
        }

        _claimed[path] = config.InstanceId;
        return path;
    }

    private string Expand(CloudInitConfig config)
    {
        if (!HasPlaceholders) return _pattern;
        var segments = _pattern.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var template = segments[i];
            if (!PlaceholderPattern().IsMatch(template)) continue;
            var filled = PlaceholderPattern().Replace(template, m => Placeholders[m.Groups[1].Value](config));
            CheckSegment(filled, template);
            segments[i] = filled;
        }

        return string.Join('/', segments);
    }

    private static void CheckSegment(string name, string template)
    {
        if (name is "..")
        {
            throw new VmToolsException("IsoPathPlaceholderEscapes", FailureKind.InvalidArgument,
                $"'{template}' becomes '..', which leaves the folder -Path names.") { Target = name };
        }

        if (name.Length == 0 || name == "." || name.Contains('/') || name.Contains('\0') || Encoding.UTF8.GetByteCount(name) > MaxFileNameBytes)
        {
            throw new VmToolsException("IsoPathPlaceholderInvalid", FailureKind.InvalidArgument,
                $"'{template}' becomes '{name}', which is not a file name (empty, '.', a '/', or over {MaxFileNameBytes} bytes).") { Target = name };
        }
    }

    [GeneratedRegex(@"\{([A-Za-z][A-Za-z0-9]*)\}")]
    private static partial Regex PlaceholderPattern();
}
