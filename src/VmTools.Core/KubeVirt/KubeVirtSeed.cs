using System.Text;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;

namespace VmTools.Core.KubeVirt;

/// <summary>
/// A seed as KubeVirt's <c>cloudInitNoCloud</c> volume takes it: user-data and network-data text only
/// (KubeVirt writes its own meta-data, so the instance id becomes the VM's). The payload files a seed
/// image carries beside them therefore travel inside the user-data (<see cref="GuestPayloadDirectory"/>).
/// </summary>
public sealed record KubeVirtSeed
{
    /// <summary>Where the agent payload is written in the guest when it travels inside the user-data.</summary>
    public const string GuestPayloadDirectory = "/var/lib/vmtools/payload";

    private KubeVirtSeed(string userData, string networkData, string? macAddress, string? hostname)
    {
        UserData = userData;
        NetworkData = networkData;
        MacAddress = macAddress;
        Hostname = hostname;
    }

    /// <summary>Holds passwords, keys and certificates: it only ever goes into a Secret.</summary>
    internal string UserData { get; }

    /// <summary>Addresses only; this goes inline into the VirtualMachine.</summary>
    public string NetworkData { get; }

    /// <summary>The MAC the network-config matches the NIC by; null when it names none (or several).</summary>
    public string? MacAddress { get; }

    public string? Hostname { get; }

    public static KubeVirtSeed FromConfig(CloudInitConfig config)
        => new(NoCloudSeed.UserData(config, GuestPayloadDirectory), NoCloudSeed.NetworkConfig(config), config.MacAddress, config.Hostname);

    /// <summary>A seed image written by New-CloudInitIso (or any NoCloud ISO with user-data at its root).</summary>
    public static KubeVirtSeed FromIso(string isoPath)
    {
        byte[]? Read(string name)
        {
            try { return IsoRootFileReader.Read(isoPath, name); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                throw Unreadable(isoPath, e.Message);
            }
        }

        var userData = Read("user-data") ?? throw Unreadable(isoPath, "it has no user-data");
        return FromFiles(isoPath, Encoding.UTF8.GetString(userData), Read("network-config") is { } n ? Encoding.UTF8.GetString(n) : null);
    }

    /// <summary>A seed directory written by New-CloudInitConfig -Path.</summary>
    public static KubeVirtSeed FromDirectory(string directory)
    {
        var userData = Path.Combine(directory, "user-data");
        if (!File.Exists(userData)) throw Unreadable(directory, "it has no user-data");
        var network = Path.Combine(directory, "network-config");
        return FromFiles(directory, File.ReadAllText(userData), File.Exists(network) ? File.ReadAllText(network) : null);
    }

    /// <summary>An ISO or a seed directory, whichever <paramref name="path"/> is.</summary>
    public static KubeVirtSeed FromPath(string path)
        => Directory.Exists(path) ? FromDirectory(path)
            : File.Exists(path) ? FromIso(path)
            : throw new VmToolsException("KubeVirtSeedNotFound", FailureKind.NotFound, $"The seed '{path}' does not exist.") { Target = path };

    private static KubeVirtSeed FromFiles(string source, string userData, string? networkData)
    {
        // The setup script would look for its payload on the seed disk, which KubeVirt's NoCloud disk lacks.
        if (userData.Contains(SetupScript.GuestPath, StringComparison.Ordinal))
        {
            throw new VmToolsException("KubeVirtSeedPayloadUnsupported", FailureKind.InvalidArgument,
                $"The seed '{source}' carries an agent payload beside its user-data, which KubeVirt's cloudInitNoCloud cannot hold; pipe the CloudInitConfig (New-CloudInitConfig) instead, so the payload travels inside the user-data.")
            { Target = source };
        }

        networkData ??= string.Empty;
        return new KubeVirtSeed(userData, networkData, NoCloudSeed.MacAddressIn(networkData), HostnameIn(userData));
    }

    private static string? HostnameIn(string userData)
    {
        foreach (var line in userData.Split('\n'))
        {
            if (!line.StartsWith("hostname:", StringComparison.Ordinal)) continue;
            var value = line["hostname:".Length..].Trim().Trim('"', '\'');
            return value.Length > 0 ? value : null;
        }

        return null;
    }

    private static VmToolsException Unreadable(string source, string why)
        => new("KubeVirtSeedUnreadable", FailureKind.InvalidData, $"Cannot read the seed '{source}': {why}.") { Target = source };
}
