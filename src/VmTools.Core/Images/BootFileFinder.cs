namespace VmTools.Core.Images;

/// <summary>
/// Finds the kernel and initrd a root filesystem ships under /boot (Debian: vmlinuz-VERSION and
/// initrd.img-VERSION; Fedora: vmlinuz-VERSION and initramfs-VERSION.img), taking the newest version
/// and the initrd that matches it, so qemu can boot the disk with -kernel/-initrd.
/// </summary>
public static class BootFileFinder
{
    public sealed record Found(string? KernelPath, string? InitrdPath, string? Version);

    public static Found Find(string root)
    {
        var boot = Path.Combine(root, "boot");
        if (!Directory.Exists(boot) || new DirectoryInfo(boot).LinkTarget is not null) return new Found(null, null, null);
        var kernels = new List<(string Path, string Version)>();
        foreach (var file in Directory.EnumerateFiles(boot))
        {
            var name = Path.GetFileName(file);
            foreach (var prefix in new[] { "vmlinuz-", "vmlinux-" })
            {
                if (name.StartsWith(prefix, StringComparison.Ordinal) && IsRegularFile(file) && !name.EndsWith(".hmac", StringComparison.Ordinal))
                {
                    kernels.Add((file, name[prefix.Length..]));
                }
            }
        }

        if (kernels.Count == 0) return new Found(null, null, null);
        kernels.Sort((a, b) => VersionOrder.Compare(b.Version, a.Version));
        var (kernel, version) = kernels[0];
        var initrd = new[] { $"initrd.img-{version}", $"initramfs-{version}.img", $"initrd-{version}" }
            .Select(n => Path.Combine(boot, n))
            .FirstOrDefault(IsRegularFile);
        return new Found(kernel, initrd, version);
    }

    private static bool IsRegularFile(string path)
    {
        var info = new FileInfo(path);
        return info.Exists && info.LinkTarget is null;
    }

    /// <summary>Compares version strings piece by piece, numbers as numbers: 6.1.0-10 is newer than 6.1.0-9.</summary>
    internal static readonly Comparer<string> VersionOrder = Comparer<string>.Create((a, b) =>
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (char.IsAsciiDigit(a[i]) && char.IsAsciiDigit(b[j]))
            {
                var si = i; while (i < a.Length && char.IsAsciiDigit(a[i])) i++;
                var sj = j; while (j < b.Length && char.IsAsciiDigit(b[j])) j++;
                var na = a[si..i].TrimStart('0');
                var nb = b[sj..j].TrimStart('0');
                var c = na.Length != nb.Length ? na.Length.CompareTo(nb.Length) : string.CompareOrdinal(na, nb);
                if (c != 0) return c;
            }
            else
            {
                if (a[i] != b[j]) return a[i].CompareTo(b[j]);
                i++; j++;
            }
        }

        return (a.Length - i).CompareTo(b.Length - j);
    });
}
