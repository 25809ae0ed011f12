namespace VmTools.Core.Volumes.Replication;

/// <summary>
/// How the OpenSSH client reaches a replica host. Host keys are checked against known_hosts by
/// default (the user's own file unless <see cref="KnownHostsFile"/> names another); turning that off
/// is an explicit choice (<see cref="SkipHostKeyCheck"/>), never a fallback.
/// </summary>
public sealed record SshOptions
{
    public const int DefaultConnectTimeoutSeconds = 10;

    /// <summary>A private key file (ssh -i); null uses ssh's defaults and agent.</summary>
    public string? IdentityFile { get; init; }

    /// <summary>The known_hosts file to check the host key against; null uses ~/.ssh/known_hosts.</summary>
    public string? KnownHostsFile { get; init; }

    /// <summary>Accept any host key and remember none (StrictHostKeyChecking=no, UserKnownHostsFile=/dev/null).</summary>
    public bool SkipHostKeyCheck { get; init; }

    public int ConnectTimeoutSeconds { get; init; } = DefaultConnectTimeoutSeconds;
}
