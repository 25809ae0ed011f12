using System.Globalization;
using System.Text.RegularExpressions;

namespace VmTools.Core.Volumes.Replication;

/// <summary>
/// Where a replica lives: <c>ssh://[user@]host[:port]/pool/dataset</c>. One string names the host
/// and the dataset on it, the way ssh(1) and git spell ssh URLs, so a destination can be kept in one
/// variable and passed between Send-VmVolumeSnapshot and Sync-VmVolume. Passwords are refused (keys
/// only), and every part is checked before it reaches ssh's argv or the remote shell.
/// </summary>
public sealed partial record ReplicaDestination(string? User, string Host, int Port, string Dataset)
{
    public const int DefaultPort = 22;

    public static ReplicaDestination Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text) || !text.StartsWith("ssh://", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid(text, "it must start with ssh:// (ssh://user@host[:port]/pool/dataset)");
        }

        var m = Shape().Match(text);
        if (!m.Success)
        {
            var authority = text["ssh://".Length..].Split('/')[0];
            if (authority.Contains('@') && authority[..authority.LastIndexOf('@')].Contains(':'))
            {
                throw Invalid(text, "passwords are not accepted in the destination; authenticate with a key (-IdentityFile)");
            }

            throw Invalid(text, "expected ssh://user@host[:port]/pool/dataset with a plain user (not starting with '-') and a host name or [IPv6] address");
        }

        var port = DefaultPort;
        if (m.Groups["port"].Success && (!int.TryParse(m.Groups["port"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            throw Invalid(text, "the port must be 1-65535");
        }

        var dataset = m.Groups["dataset"].Value;
        if (dataset.Contains('@')) throw Invalid(text, "name the dataset, not a snapshot: snapshots keep their names on the replica");
        ZfsName.ValidateDataset(dataset);
        var host = m.Groups["host"].Value;
        return new ReplicaDestination(m.Groups["user"].Success ? m.Groups["user"].Value : null, host.Trim('[', ']'), port, dataset);
    }

    /// <summary>The ssh destination argument: user@host (IPv6 bare, ssh takes the port separately).</summary>
    public string SshTarget => User is null ? Host : User + "@" + Host;

    /// <summary>Host and port as known_hosts records them: bare for port 22, [host]:port otherwise.</summary>
    public string KnownHostsName => Port == DefaultPort ? Host : $"[{Host}]:{Port.ToString(CultureInfo.InvariantCulture)}";

    public override string ToString()
    {
        var host = Host.Contains(':') ? "[" + Host + "]" : Host;
        var port = Port == DefaultPort ? string.Empty : ":" + Port.ToString(CultureInfo.InvariantCulture);
        return $"ssh://{(User is null ? string.Empty : User + "@")}{host}{port}/{Dataset}";
    }

    private static VmToolsException Invalid(string text, string why)
        => new("VolumeDestinationInvalid", FailureKind.InvalidArgument, $"'{Redact(text)}' is not a replica destination: {why}.") { Target = Redact(text) };

    /// <summary>A password typed into the URL never reaches an error message.</summary>
    private static string Redact(string text) => PasswordPart().Replace(text ?? string.Empty, "ssh://${user}:***@");

    [GeneratedRegex(@"^ssh://(?:(?<user>[A-Za-z0-9._][A-Za-z0-9._-]{0,63})@)?(?<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)(?::(?<port>[0-9]{1,5}))?/(?<dataset>[^\s]+)$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Shape();

    [GeneratedRegex(@"^ssh://(?<user>[^:@/]*):[^@/]*@", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex PasswordPart();
}
