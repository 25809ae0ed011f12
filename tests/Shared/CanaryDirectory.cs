using System.Security.Cryptography;
using System.Text;

namespace VmTools.TestSupport;

/// <summary>
/// A directory of host files a hostile input aims at: files (one set-id, one read-only), a subfolder,
/// a symlink. <see cref="Listing"/> is a checksum listing of every entry (type, mode, owner, size, mtime,
/// link target, SHA-256 of content) so a test can assert that nothing in it changed, appeared or vanished.
/// </summary>
public sealed class CanaryDirectory : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-canary");

    public CanaryDirectory()
    {
        File.WriteAllText(Combine("passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        File.WriteAllText(Combine("secret"), "do not touch\n");
        File.SetUnixFileMode(Combine("secret"), UnixFileMode.UserRead);
        Directory.CreateDirectory(Combine("sub", "deeper"));
        File.WriteAllBytes(Combine("sub", "deeper", "data.bin"), RandomNumberGenerator.GetBytes(4096));
        File.CreateSymbolicLink(Combine("sub", "link"), "../passwd");
        File.SetUnixFileMode(Combine("sub"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        Before = Listing();
    }

    public string Path => _dir.Path;

    /// <summary>The listing taken when the canary was made.</summary>
    public string Before { get; }

    public string Combine(params string[] parts) => _dir.Combine(parts);

    /// <summary>One line per entry, the top folder included, sorted by path.</summary>
    public string Listing()
    {
        var find = Programs.MustRun("find", Path, "-printf", "%P\t%y\t%m\t%U:%G\t%s\t%T@\t%l\n");
        var lines = new List<string>();
        foreach (var line in find.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split('\t');
            var hash = fields[1] == "f" ? Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(System.IO.Path.Combine(Path, fields[0])))) : "-";
            lines.Add(line + "\t" + hash);
        }

        lines.Sort(StringComparer.Ordinal);
        var text = new StringBuilder();
        foreach (var l in lines) text.Append(l).Append('\n');
        return text.ToString();
    }

    /// <summary>Fails naming the difference when anything in the canary changed.</summary>
    public void AssertUntouched() => Assert.Equal(Before, Listing());

    public void Dispose() => _dir.Dispose();
}
