using System.Text.RegularExpressions;

namespace VmTools.Core.Registry;

/// <summary>
/// The credentials an address can carry (<c>https://user:password@host</c>): what of such an address may be
/// shown. Every message and TargetObject that repeats an address a user typed goes through <see cref="Redact"/>.
/// </summary>
public static partial class UserInfo
{
    /// <summary>True when <paramref name="address"/> has a user (and maybe a password) before its host.</summary>
    public static bool IsIn(string? address) => address is not null && Pattern().IsMatch(address);

    /// <summary>The address with its user information replaced by <c>***</c>; any other text unchanged.</summary>
    public static string Redact(string? address)
        => address is null ? string.Empty : Pattern().Replace(address, m => m.Groups["scheme"].Value + "***@");

    /// <summary>
    /// An optional scheme, then everything up to the last '@' before the first '/' — unless what follows that '@'
    /// is a digest (<c>repo@sha256:…</c> is an image reference, not a login).
    /// </summary>
    [GeneratedRegex(@"^(?<scheme>\s*(?:[A-Za-z][A-Za-z0-9+.\-]*://)?)[^/\s]*@(?![A-Za-z0-9]+:[0-9A-Fa-f]{32,})")]
    private static partial Regex Pattern();
}
