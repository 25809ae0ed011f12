using System.Security.Cryptography;

namespace VmTools.Core.Vms;

/// <summary>
/// The name a copy out of a guest is written under until scp succeeded: a fresh, hidden name in the target's
/// folder (the same file system, so the rename is atomic). <see cref="Commit"/> renames it over the target;
/// <see cref="Dispose"/> without a commit removes it, and only it: the name is random and was not there before.
/// </summary>
public sealed class VmCopyStaging : IDisposable
{
    private readonly string _target;
    private bool _committed;

    private VmCopyStaging(string target, string path)
    {
        _target = target;
        Path = path;
    }

    /// <summary>Where scp writes: nothing exists there yet.</summary>
    public string Path { get; }

    public static VmCopyStaging Beside(string target)
    {
        var folder = System.IO.Path.GetDirectoryName(target) ?? throw new ArgumentException("The target must be an absolute path.", nameof(target));
        var name = $".{System.IO.Path.GetFileName(target)}.vmtools-{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.part";
        return new VmCopyStaging(target, System.IO.Path.Combine(folder, name));
    }

    /// <summary>
    /// Puts what scp wrote in the target's place. A file that already stood there keeps its permissions, as scp
    /// writing over it in place would have: a target made 0600 to receive a secret stays 0600.
    /// Throws <c>VmCopyFailed</c> when the rename cannot be done (say, a file over a folder).
    /// </summary>
    public void Commit()
    {
        try
        {
            if (File.Exists(Path))
            {
                if (File.Exists(_target)) File.SetUnixFileMode(Path, File.GetUnixFileMode(_target));
                File.Move(Path, _target, overwrite: true);
            }
            else if (Directory.Exists(Path))
            {
                Directory.Move(Path, _target);
            }
            else
            {
                throw new IOException("scp reported success but wrote nothing.");
            }

            _committed = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VmToolsException("VmCopyFailed", FailureKind.InvalidOperation, $"The copy arrived as '{Path}' but could not be moved to '{_target}': {e.Message}", e) { Target = _target };
        }
    }

    public void Dispose()
    {
        if (_committed) return;
        try
        {
            // Not following links: Directory.Delete removes a symbolic link scp made, not what it points to.
            if (Directory.Exists(Path) && !new DirectoryInfo(Path).Attributes.HasFlag(FileAttributes.ReparsePoint)) Directory.Delete(Path, recursive: true);
            else File.Delete(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the failure being reported matters more than a leftover hidden file.
        }
    }
}
