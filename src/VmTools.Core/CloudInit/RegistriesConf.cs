namespace VmTools.Core.CloudInit;

/// <summary>containers-registries.conf(5) v2: one <c>[[registry]]</c> table, as the reference's registry.conf.</summary>
public static class RegistriesConf
{
    public static string Render(string location, bool insecure)
        => $"[[registry]]\nlocation = {TomlString(location)}\ninsecure = {(insecure ? "true" : "false")}\n";

    private static string TomlString(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
