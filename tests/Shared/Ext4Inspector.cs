using System.Text.RegularExpressions;

namespace VmTools.TestSupport;

/// <summary>
/// Reads an ext4 filesystem inside a qcow2 with independent tools and no mount: qemu-img converts it
/// to raw, e2fsck -fn checks it, debugfs lists, stats and dumps files.
/// </summary>
public sealed partial class Ext4Inspector : IDisposable
{
    private readonly string _raw;
    private readonly string _debugfs;

    public Ext4Inspector(string qcow2, string workDirectory)
    {
        var qemuImg = RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        _debugfs = RealComponent.RequireProgram("debugfs", "apt-get install e2fsprogs");
        _raw = Path.Combine(workDirectory, "inspect-" + Guid.NewGuid().ToString("N")[..8] + ".raw");
        Programs.MustRun(qemuImg, "convert", "-q", "-f", "qcow2", "-O", "raw", qcow2, _raw);
    }

    /// <summary>e2fsck -fn: exit 0 means a clean filesystem, nothing to repair.</summary>
    public (int ExitCode, string Output) Check()
    {
        var (code, stdout, stderr) = Programs.Run(RealComponent.RequireProgram("e2fsck", "apt-get install e2fsprogs"), "-fn", _raw);
        return (code, stdout + stderr);
    }

    public string Label => Programs.MustRun(RealComponent.RequireProgram("e2label", "apt-get install e2fsprogs"), _raw).Trim();

    public byte[] ReadFile(string path)
    {
        var target = _raw + ".dump";
        try
        {
            Debugfs($"dump {path} {target}");
            Assert.True(File.Exists(target), $"debugfs could not dump {path}");
            return File.ReadAllBytes(target);
        }
        finally
        {
            File.Delete(target);
        }
    }

    public bool Exists(string path) => !Debugfs($"stat {path}").Contains("File not found", StringComparison.Ordinal);

    public InodeInfo Stat(string path)
    {
        var text = Debugfs($"stat {path}");
        var type = TypePattern().Match(text);
        Assert.True(type.Success, $"debugfs stat {path}: {text}");
        var owner = OwnerPattern().Match(text);
        var links = LinksPattern().Match(text);
        var device = DevicePattern().Match(text);
        var fastLink = FastLinkPattern().Match(text);
        var inode = InodePattern().Match(text);
        return new InodeInfo(
            type.Groups[1].Value.Trim(),
            Convert.ToInt32(type.Groups[2].Value, 8),
            int.Parse(owner.Groups[1].Value),
            int.Parse(owner.Groups[2].Value),
            int.Parse(links.Groups[1].Value),
            int.Parse(inode.Groups[1].Value),
            device.Success ? $"{int.Parse(device.Groups[1].Value)}:{int.Parse(device.Groups[2].Value)}" : null,
            fastLink.Success ? fastLink.Groups[1].Value : null);
    }

    /// <summary>Names in a folder (without . and ..).</summary>
    public IReadOnlyList<string> List(string folder)
        => Debugfs($"ls -p {folder}").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('/'))
            .Where(p => p.Length > 5 && p[5] is not ("." or ".." or ""))
            .Select(p => p[5])
            .ToList();

    /// <summary>A symlink's target, whether stored in the inode or in a block.</summary>
    public string ReadLink(string path)
    {
        var info = Stat(path);
        return info.FastLinkTarget ?? System.Text.Encoding.UTF8.GetString(ReadFile(path));
    }

    public void Dispose() => File.Delete(_raw);

    private string Debugfs(string request)
    {
        var (code, stdout, stderr) = Programs.Run(_debugfs, "-R", request, _raw);
        Assert.True(code == 0, $"debugfs -R '{request}' exited {code}: {stderr}");
        return stdout + stderr;
    }

    [GeneratedRegex(@"Type:\s+([A-Za-z ]+?)\s+Mode:\s+([0-7]+)")]
    private static partial Regex TypePattern();

    [GeneratedRegex(@"User:\s+(\d+)\s+Group:\s+(\d+)")]
    private static partial Regex OwnerPattern();

    [GeneratedRegex(@"Links:\s+(\d+)")]
    private static partial Regex LinksPattern();

    [GeneratedRegex(@"Inode:\s+(\d+)")]
    private static partial Regex InodePattern();

    [GeneratedRegex(@"Device major/minor number:\s+(\d+):(\d+)")]
    private static partial Regex DevicePattern();

    [GeneratedRegex("Fast link dest:\\s+\"(.*)\"")]
    private static partial Regex FastLinkPattern();
}

public sealed record InodeInfo(string Type, int Mode, int Uid, int Gid, int Links, int Inode, string? Device, string? FastLinkTarget);
