using System.Diagnostics;
using System.Security.Cryptography;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>The independent readers the ISO tests trust: isoinfo (genisoimage) and xorriso.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class IsoReaders
{
    public static string IsoInfo => RealComponent.RequireProgram("isoinfo", "apt-get install genisoimage");

    public static string Xorriso => RealComponent.RequireProgram("xorriso", "apt-get install xorriso");

    public static string GenIsoImage => RealComponent.RequireProgram("genisoimage", "apt-get install genisoimage");

    /// <summary>`isoinfo -f` with the chosen name extension ("-R" or "-J"): one path per line, sorted.</summary>
    public static string[] Find(string iso, string extension)
        => Programs.MustRun(IsoInfo, "-i", iso, extension, "-f").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.EndsWith(";1", StringComparison.Ordinal) ? l[..^2] : l).OrderBy(l => l, StringComparer.Ordinal).ToArray();

    public static string AsIsoInfoShowsJoliet(string path) => new(path.Select(c => c > 0xFF ? '_' : c).ToArray());

    /// <summary>The bytes isoinfo extracts for one path, hashed while streaming (files may be gigabytes).</summary>
    public static string ExtractHash(string iso, string extension, string isoPath)
    {
        var psi = new ProcessStartInfo(IsoInfo) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-i", iso, extension, "-x", isoPath }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        using var sha = SHA256.Create();
        var hash = Convert.ToHexStringLower(sha.ComputeHash(p.StandardOutput.BaseStream));
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"isoinfo -x {isoPath} exited {p.ExitCode}: {stderr.Result}");
        return hash;
    }

    public static string HashFile(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>Everything under <paramref name="root"/>: relative path → (is directory, mode, sha256).</summary>
    public static SortedDictionary<string, (bool Dir, UnixFileMode Mode, string? Hash)> Tree(string root)
    {
        var result = new SortedDictionary<string, (bool, UnixFileMode, string?)>(StringComparer.Ordinal);
        foreach (var e in new DirectoryInfo(root).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, e.FullName);
            result[rel] = e is DirectoryInfo ? (true, e.UnixFileMode & (UnixFileMode)0x1FF, null) : (false, e.UnixFileMode & (UnixFileMode)0x1FF, HashFile(e.FullName));
        }

        return result;
    }
}
