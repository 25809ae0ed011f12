namespace VmTools.Core.CloudInit;

/// <summary>
/// A guest account. A password is either a crypt(3) hash (cloud-init's <c>passwd</c>) or plain text
/// that cloud-init hashes itself (<c>plain_text_passwd</c>); the plain text is kept out of
/// <see cref="ToString"/> and every public property so it never reaches a log or a format view.
/// </summary>
public sealed partial class CloudInitUser
{
    private readonly string? _plainPassword;

    public CloudInitUser(string name, IReadOnlyList<string>? sshAuthorizedKeys = null, string? passwordHash = null, string? plainPassword = null,
        string? sudo = "ALL=(ALL) NOPASSWD:ALL", string shell = "/bin/bash")
    {
        if (string.IsNullOrWhiteSpace(name) || !NamePattern().IsMatch(name))
        {
            throw new VmToolsException("CloudInitUserNameInvalid", FailureKind.InvalidArgument,
                $"'{name}' is not a valid Linux user name (lowercase letters, digits, '_' and '-', at most 32).") { Target = name };
        }

        if (passwordHash is not null && plainPassword is not null)
        {
            throw new VmToolsException("CloudInitPasswordConflict", FailureKind.InvalidArgument,
                $"User '{name}' was given both a password hash and a plain password; give one.") { Target = name };
        }

        if (passwordHash is not null && !passwordHash.StartsWith('$'))
        {
            throw new VmToolsException("CloudInitPasswordHashInvalid", FailureKind.InvalidArgument,
                $"The password hash for '{name}' is not a crypt(3) hash (it must start with '$', e.g. from 'openssl passwd -6').") { Target = name };
        }

        Name = name;
        SshAuthorizedKeys = sshAuthorizedKeys ?? Array.Empty<string>();
        PasswordHash = passwordHash;
        _plainPassword = plainPassword;
        Sudo = sudo;
        Shell = shell;
    }

    /// <summary>
    /// The one account New-CloudInitConfig's parameters describe, or null when no -UserName is given;
    /// keys or a password without a name are refused rather than dropped (CloudInitUserNameMissing).
    /// </summary>
    public static CloudInitUser? FromParameters(string? name, IReadOnlyList<string>? sshAuthorizedKeys, string? passwordHash, string? plainPassword)
    {
        if (name is not null) return new CloudInitUser(name, sshAuthorizedKeys, passwordHash, plainPassword);
        if (sshAuthorizedKeys is not null || passwordHash is not null || plainPassword is not null)
        {
            throw new VmToolsException("CloudInitUserNameMissing", FailureKind.InvalidArgument, "-SshAuthorizedKey, -PasswordHash and -Password need -UserName.");
        }

        return null;
    }

    public string Name { get; }

    public IReadOnlyList<string> SshAuthorizedKeys { get; }

    public string? PasswordHash { get; }

    public bool HasPlainPassword => _plainPassword is not null;

    public string? Sudo { get; }

    public string Shell { get; }

    internal string? PlainPassword => _plainPassword;

    public override string ToString() => Name;

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z_][a-z0-9_-]{0,31}$")]
    private static partial System.Text.RegularExpressions.Regex NamePattern();
}
