namespace VmTools.Core.Images;

/// <summary>
/// Judges tar entry names and link targets against the layer's root. An entry or link that would
/// resolve outside the root is refused outright, whatever VmTools meant to extract.
/// </summary>
internal static class LayerEntryPath
{
    /// <summary>The entry's path relative to the layer root, or an error when it escapes it.</summary>
    public static string Normalize(string name)
    {
        var segments = new List<string>();
        foreach (var s in name.Replace('\\', '/').Split('/'))
        {
            if (s.Length == 0 || s == ".") continue;
            if (s == "..")
            {
                if (segments.Count == 0) throw Escapes(name);
                segments.RemoveAt(segments.Count - 1);
                continue;
            }

            segments.Add(s);
        }

        return string.Join('/', segments);
    }

    /// <summary>Checks a symlink target, resolved from the link's folder (absolute targets are relative to the layer root).</summary>
    public static void CheckLinkTarget(string entryName, string target, bool hardLink)
    {
        if (hardLink || target.StartsWith('/'))
        {
            Normalize(target);
            return;
        }

        var folder = Path.GetDirectoryName(Normalize(entryName))?.Replace('\\', '/') ?? string.Empty;
        try
        {
            Normalize(folder.Length == 0 ? target : folder + "/" + target);
        }
        catch (VmToolsException)
        {
            throw Escapes(entryName + " -> " + target);
        }
    }

    public static bool IsDisk(string normalized)
        => normalized == ContainerDiskLayout.FlightctlEntry
           || (normalized.StartsWith("disk/", StringComparison.Ordinal) && normalized.IndexOf('/', 5) < 0
               && (normalized.EndsWith(".qcow2", StringComparison.OrdinalIgnoreCase) || normalized.EndsWith(".img", StringComparison.OrdinalIgnoreCase)));

    /// <summary>Kernel and initrd files carried for direct kernel boot.</summary>
    public static string? BootFileName(string normalized)
    {
        var slash = normalized.LastIndexOf('/');
        var folder = slash < 0 ? string.Empty : normalized[..slash];
        var file = normalized[(slash + 1)..];
        if (folder is not ("disk" or "boot")) return null;
        return BootFile.IsKernel(file) || BootFile.IsInitrd(file) ? file : null;
    }

    private static VmToolsException Escapes(string name)
        => new("ImageLayerPathEscapes", FailureKind.SecurityError, $"Layer entry '{name}' escapes the layer's root; refusing the image.") { Target = name };
}
