using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// Manifests as text <c>kubectl apply -f -</c> takes: YAML documents separated by <c>---</c>, or JSON
/// (one object, or a <c>v1</c> List when there are several). Strings are always quoted (or written as
/// literal blocks when multi-line) so that a value such as "true" or "0644" stays a string.
/// </summary>
public static class ManifestText
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static string ToJson(IReadOnlyList<KubernetesManifest> manifests)
    {
        JsonNode node = manifests.Count == 1
            ? manifests[0].ToJsonObject()
            : new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "List",
                ["items"] = new JsonArray(manifests.Select(m => (JsonNode)m.ToJsonObject()).ToArray()),
            };
        return node.ToJsonString(Indented) + "\n";
    }

    public static string ToYaml(IReadOnlyList<KubernetesManifest> manifests)
    {
        var stream = new YamlStream(manifests.Select(m => new YamlDocument(ToYamlNode(m.ToJsonObject()))));
        using var writer = new StringWriter { NewLine = "\n" };
        stream.Save(writer, assignAnchors: false);
        // YamlDotNet ends every document with "...", which kubectl accepts but people do not expect.
        return writer.ToString().Replace("\n...\n", "\n", StringComparison.Ordinal);
    }

    private static YamlNode ToYamlNode(JsonNode? node) => node switch
    {
        JsonObject o => new YamlMappingNode(o.Select(p => new KeyValuePair<YamlNode, YamlNode>(new YamlScalarNode(p.Key), ToYamlNode(p.Value)))),
        JsonArray a => new YamlSequenceNode(a.Select(ToYamlNode)),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => StringScalar(v.GetValue<string>()),
        null => new YamlScalarNode("null") { Style = ScalarStyle.Plain },
        _ => new YamlScalarNode(node.ToJsonString()) { Style = ScalarStyle.Plain },
    };

    private static YamlScalarNode StringScalar(string value)
        => new(value) { Style = value.Contains('\n', StringComparison.Ordinal) ? ScalarStyle.Literal : ScalarStyle.DoubleQuoted };
}
