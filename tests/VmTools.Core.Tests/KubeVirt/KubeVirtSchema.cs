using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace VmTools.Core.Tests.KubeVirt;

/// <summary>
/// KubeVirt v1.9.0's published OpenAPI definitions as a JSON Schema validator (JsonSchema.Net), for proving
/// manifests without an API server. KubeVirt's definitions do not forbid unknown fields (the API server
/// prunes or rejects them itself), so every object definition that lists its properties and says nothing
/// about others gets <c>additionalProperties: false</c> here: an unknown or misspelt field fails validation.
/// </summary>
internal static class KubeVirtSchema
{
    private const string OpenApiFile = "kubevirt-v1.9.0-openapi.json";
    private const string SecretSchemaFile = "core-v1-secret.schema.json";

    private static readonly Lazy<JsonObject> Definitions = new(() =>
    {
        var swagger = JsonNode.Parse(File.ReadAllText(DataPath(OpenApiFile)))!.AsObject();
        var definitions = swagger["definitions"]!.AsObject();
        Close(definitions);
        return definitions;
    });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, JsonSchema> Built = new();

    private static readonly Lazy<JsonSchema> SecretSchema = new(() => JsonSchema.FromText(File.ReadAllText(DataPath(SecretSchemaFile))));

    /// <summary>The errors of <paramref name="document"/> against definition <paramref name="definition"/> (empty: valid).</summary>
    public static IReadOnlyList<string> Validate(JsonNode document, string definition)
    {
        var root = new JsonObject
        {
            ["$schema"] = "http://json-schema.org/draft-07/schema#",
            ["definitions"] = Definitions.Value.DeepClone(),
            ["allOf"] = new JsonArray { new JsonObject { ["$ref"] = "#/definitions/" + definition } },
        };
        var schema = Built.GetOrAdd(definition, _ => JsonSchema.FromText(root.ToJsonString(), new BuildOptions { SchemaRegistry = new SchemaRegistry() }));
        return Errors(schema, document);
    }

    /// <summary>The errors of a Secret against this repository's own small core/v1 Secret schema.</summary>
    public static IReadOnlyList<string> ValidateSecret(JsonNode document) => Errors(SecretSchema.Value, document);

    /// <summary>Validates by kind: VirtualMachine against KubeVirt's definition, Secret against ours; any other kind is an error.</summary>
    public static IReadOnlyList<string> ValidateAny(JsonNode document) => (string?)document["kind"] switch
    {
        "VirtualMachine" => Validate(document, "v1.VirtualMachine"),
        "Secret" => ValidateSecret(document),
        var other => new[] { $"no schema for kind '{other}'" },
    };

    private static IReadOnlyList<string> Errors(JsonSchema schema, JsonNode document)
    {
        using var json = JsonDocument.Parse(document.ToJsonString());
        var result = schema.Evaluate(json.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return Array.Empty<string>();
        var errors = (result.Details ?? new List<EvaluationResults>())
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .ToList();
        return errors.Count > 0 ? errors : new[] { "invalid" };
    }

    private static void Close(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["properties"] is JsonObject && !o.ContainsKey("additionalProperties")) o["additionalProperties"] = false;
                foreach (var (_, child) in o.ToList()) Close(child);
                break;
            case JsonArray a:
                foreach (var child in a) Close(child);
                break;
        }
    }

    private static string DataPath(string name) => Path.Combine(AppContext.BaseDirectory, "KubeVirt", name);
}
