using System.Text.Json.Nodes;

namespace VmTools.Core.KubeVirt;

/// <summary>One document for <c>kubectl apply</c>: what it is called and where, and its JSON form.</summary>
public abstract record KubernetesManifest
{
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "vmtools";

    public abstract string ApiVersion { get; }

    public abstract string Kind { get; }

    public required string Name { get; init; }

    public required string Namespace { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    /// <summary>The document as the API server takes it.</summary>
    public abstract JsonObject ToJsonObject();

    protected JsonObject Metadata()
    {
        var labels = new JsonObject();
        foreach (var (key, value) in Labels.OrderBy(l => l.Key, StringComparer.Ordinal)) labels[key] = value;
        return new JsonObject { ["name"] = Name, ["namespace"] = Namespace, ["labels"] = labels };
    }

    public override string ToString() => $"{Kind}/{Name}";
}
