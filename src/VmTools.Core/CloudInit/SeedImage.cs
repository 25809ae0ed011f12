using VmTools.Core.CloudInit.Iso9660;

namespace VmTools.Core.CloudInit;

/// <summary>Writes a NoCloud seed image from a config, or from a seed directory someone prepared.</summary>
public static class SeedImage
{
    public static CloudInitIso Write(CloudInitConfig config, string path, IsoImageOptions options, bool overwrite,
        IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        GuardExisting(path, overwrite);
        var iso = IsoImageWriter.Write(NoCloudSeed.ToIsoContent(config), path, options, progress, cancellationToken);
        return iso with { MacAddress = config.MacAddress };
    }

    /// <summary>
    /// Images a seed directory as it is; NoCloud needs user-data and meta-data at its top. The MAC
    /// its network-config names (if exactly one) is carried on the result for Start-FlightVm.
    /// </summary>
    public static CloudInitIso Write(string sourceDirectory, string path, IsoImageOptions options, bool overwrite,
        IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (!Directory.Exists(sourceDirectory))
        {
            throw new VmToolsException("IsoSourceNotFound", FailureKind.NotFound, $"The seed directory '{sourceDirectory}' does not exist.") { Target = sourceDirectory };
        }

        foreach (var required in new[] { "user-data", "meta-data" })
        {
            if (!File.Exists(Path.Combine(sourceDirectory, required)))
            {
                throw new VmToolsException("CloudInitSeedIncomplete", FailureKind.InvalidData,
                    $"'{sourceDirectory}' has no '{required}'; cloud-init's NoCloud datasource ignores a seed without user-data and meta-data.") { Target = sourceDirectory };
            }
        }

        var sourceFull = Path.GetFullPath(sourceDirectory).TrimEnd('/') + "/";
        if (Path.GetFullPath(path).StartsWith(sourceFull, StringComparison.Ordinal))
        {
            throw new VmToolsException("IsoOutputInsideSource", FailureKind.InvalidArgument,
                $"The image '{path}' would be written inside the directory it images ('{sourceDirectory}').") { Target = path };
        }

        GuardExisting(path, overwrite);
        var networkConfig = Path.Combine(sourceDirectory, "network-config");
        var mac = File.Exists(networkConfig) ? NoCloudSeed.MacAddressIn(File.ReadAllText(networkConfig)) : null;
        var iso = IsoImageWriter.Write(new IsoContent().AddTree(sourceDirectory, skip: IsVmToolsBookkeeping), path, options, progress, cancellationToken);
        return iso with { MacAddress = mac };
    }

    /// <summary>The seed directory's marker (and staging leftovers) are VmTools' bookkeeping on the host, not seed content.</summary>
    private static bool IsVmToolsBookkeeping(string relativePath)
        => !relativePath.Contains('/') && relativePath.StartsWith(SeedDirectory.MarkerName, StringComparison.Ordinal);

    /// <summary>
    /// The MAC a seed image's network-config names (exactly one), read from the image itself: for a
    /// seed given only by path. Null for an image without one, or a file that is not ISO 9660.
    /// </summary>
    public static string? MacAddressOf(string imagePath)
        => IsoRootFileReader.Read(imagePath, "network-config") is { } bytes ? NoCloudSeed.MacAddressIn(System.Text.Encoding.UTF8.GetString(bytes)) : null;

    private static void GuardExisting(string path, bool overwrite)
    {
        if (!overwrite && File.Exists(path))
        {
            throw new VmToolsException("IsoOutputExists", FailureKind.ResourceExists,
                $"'{path}' already exists; use -Force to replace it.") { Target = path };
        }
    }
}
