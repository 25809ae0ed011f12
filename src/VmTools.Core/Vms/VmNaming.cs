using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// Names of things VmTools creates in the host kernel. Tap names carry a prefix unique to one state
/// directory (<c>vmt&lt;4 hex&gt;-</c>), so orphan detection never claims another VMTOOLS_HOME's taps,
/// and stay within the kernel's 15-character interface name limit.
/// </summary>
public static partial class VmNaming
{
    public const string DefaultBridge = "vmtbr0";

    public static string TapPrefix(VmToolsPaths paths)
        => "vmt" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(paths.StateDirectory))))[..4].ToLowerInvariant() + "-";

    public static string NewId() => Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();

    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

    /// <summary>What the kernel accepts as an interface name; "." and ".." are refused there too (and would be folders here).</summary>
    public static bool IsValidInterfaceName(string name) => name.Length is > 0 and <= 15 && name is not "." and not ".." && InterfacePattern().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9_.-]+$")]
    private static partial Regex InterfacePattern();
}
