namespace VmTools.Core.Registry;

/// <summary>A user name and secret for one registry. ToString never shows the secret.</summary>
public sealed class RegistryCredential
{
    public RegistryCredential(string userName, string password)
    {
        UserName = userName;
        Password = password;
    }

    public string UserName { get; }

    public string Password { get; }

    /// <summary>Where it came from (parameter, a file path), for verbose output.</summary>
    public string Source { get; init; } = "parameter";

    public override string ToString() => $"{UserName} (from {Source})";
}
