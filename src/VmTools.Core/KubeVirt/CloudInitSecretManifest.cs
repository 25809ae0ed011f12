using System.Text;
using System.Text.Json.Nodes;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// The <c>v1</c> Secret holding a VM's user-data (passwords, keys, certificates, the agent's config),
/// which the VirtualMachine's cloudInitNoCloud volume references by <c>secretRef</c>. The user-data is
/// no public property, so printing or formatting this object never shows it.
/// </summary>
public sealed record CloudInitSecretManifest : KubernetesManifest
{
    /// <summary>The key KubeVirt reads user-data from in a referenced Secret.</summary>
    public const string UserDataKey = "userdata";

    public override string ApiVersion => "v1";

    public override string Kind => "Secret";

    internal string UserData { get; init; } = string.Empty;

    public IReadOnlyList<string> Keys => new[] { UserDataKey };

    public override JsonObject ToJsonObject() => new()
    {
        ["apiVersion"] = ApiVersion,
        ["kind"] = Kind,
        ["metadata"] = Metadata(),
        ["type"] = "Opaque",
        ["data"] = new JsonObject { [UserDataKey] = Convert.ToBase64String(Encoding.UTF8.GetBytes(UserData)) },
    };
}
