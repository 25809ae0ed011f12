using System.Formats.Tar;
using System.Text;
using VmTools.Core.Host;

namespace VmTools.Core.Images;

/// <summary>
/// Unpacks a root filesystem tar (a container export or a rootfs tarball) into a directory that
/// <c>mkfs.ext4 -d</c> copies verbatim: modes, owners (as root), symlinks, hard links, device nodes,
/// fifos, xattrs and mtimes. It never follows a symlink while writing, so no entry can land outside
/// the root, and it refuses entries whose names escape it.
/// </summary>
public sealed class RootfsExtractor
{
    private const int BlockSize = 4096;

    // A container engine leaves these marker files in exports; in a VM they would make systemd and
    // tools believe they run inside a container.
    private static readonly HashSet<string> ContainerMarkers = new(StringComparer.Ordinal) { ".dockerenv", "run/.containerenv" };

    private readonly string _root;
    private readonly bool _preserveOwnership;
    private readonly HashSet<string> _knownDirectories = new(StringComparer.Ordinal) { string.Empty };
    private readonly Dictionary<string, TarEntry> _directoryMetadata = new(StringComparer.Ordinal);
    private readonly List<string> _notes = new();
    private long _allocatedBytes;
    private long _contentBytes;
    private int _entries;
    private int _skippedDevices;
    private int _ownershipFailures;

    public RootfsExtractor(string root, bool? preserveOwnership = null)
    {
        _root = Path.GetFullPath(root);
        _preserveOwnership = preserveOwnership ?? UnixFileSystem.IsRoot;
        Directory.CreateDirectory(_root);
    }

    /// <summary>Reads <paramref name="tar"/> to its end and writes every entry under the root.</summary>
    public async Task<RootfsSummary> ExtractAsync(Stream tar, CancellationToken cancellationToken)
    {
        var reader = new TarReader(tar, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            while (true)
            {
                TarEntry? entry;
                try
                {
                    entry = await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new VmToolsException("RootfsArchiveInvalid", FailureKind.InvalidData,
                        $"The root filesystem archive is not a readable tar: {e.Message}", e);
                }

                if (entry is null) break;
                cancellationToken.ThrowIfCancellationRequested();
                await WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        ApplyDirectoryMetadata();
        if (_skippedDevices > 0) _notes.Add($"{_skippedDevices} device node(s) were skipped: creating them needs root.");
        if (_ownershipFailures > 0) _notes.Add($"{_ownershipFailures} file owner(s) could not be set.");
        if (!_preserveOwnership) _notes.Add("Not running as root: files in the image belong to the current user instead of their recorded owners.");
        return new RootfsSummary(_root, _entries, _contentBytes, _allocatedBytes, _preserveOwnership && _ownershipFailures == 0, _notes.ToArray());
    }

    private async Task WriteEntryAsync(TarEntry entry, CancellationToken ct)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes or TarEntryType.LongLink or TarEntryType.LongPath)
        {
            return;
        }

        var relative = LayerEntryPath.Normalize(entry.Name);
        if (ContainerMarkers.Contains(relative)) return;
        if (relative.Length == 0)
        {
            if (entry.EntryType == TarEntryType.Directory) _directoryMetadata[string.Empty] = entry;
            return;
        }

        EnsureParentDirectories(relative, entry.Name);
        var target = Path.Combine(_root, relative);
        _entries++;
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (!IsRealDirectory(target))
                {
                    RemoveExisting(target);
                    Directory.CreateDirectory(target);
                }

                _knownDirectories.Add(relative);
                _directoryMetadata[relative] = entry;
                _allocatedBytes += BlockSize;
                break;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                RemoveExisting(target);
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite };
                var file = new FileStream(target, options);
                await using (file.ConfigureAwait(false))
                {
                    if (entry.DataStream is { } data) await data.CopyToAsync(file, 1 << 20, ct).ConfigureAwait(false);
                }

                _contentBytes += entry.Length;
                _allocatedBytes += RoundUp(entry.Length);
                ApplyMetadata(target, entry, isLink: false);
                break;

            case TarEntryType.SymbolicLink:
                RemoveExisting(target);
                File.CreateSymbolicLink(target, entry.LinkName);
                // Short targets live in the inode itself; longer ones take a block.
                if (Encoding.UTF8.GetByteCount(entry.LinkName) >= 60) _allocatedBytes += BlockSize;
                ApplyMetadata(target, entry, isLink: true);
                break;

            case TarEntryType.HardLink:
                var linked = LayerEntryPath.Normalize(entry.LinkName);
                EnsureParentDirectories(linked, entry.LinkName);
                var existing = Path.Combine(_root, linked);
                RemoveExisting(target);
                var rc = UnixFileSystem.TryHardLink(existing, target);
                if (rc != 0)
                {
                    throw new VmToolsException("RootfsArchiveInvalid", FailureKind.InvalidData,
                        $"Hard link '{entry.Name}' -> '{entry.LinkName}' cannot be made (errno {rc}): its target is not an earlier entry of the archive.") { Target = entry.Name };
                }

                break;

            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                RemoveExisting(target);
                var mode = entry.Mode & (UnixFileMode)0xfff;
                var (major, minor) = entry is PosixTarEntry posix ? (posix.DeviceMajor, posix.DeviceMinor) : (0, 0);
                var made = entry.EntryType == TarEntryType.CharacterDevice
                    ? UnixFileSystem.TryMakeCharacterDevice(target, mode, major, minor)
                    : UnixFileSystem.TryMakeBlockDevice(target, mode, major, minor);
                if (made != 0)
                {
                    // Without root (EPERM) the node is left out; udev/devtmpfs recreate /dev at boot anyway.
                    _skippedDevices++;
                    _entries--;
                    break;
                }

                ApplyMetadata(target, entry, isLink: false);
                break;

            case TarEntryType.Fifo:
                RemoveExisting(target);
                if (UnixFileSystem.TryMakeFifo(target, entry.Mode & (UnixFileMode)0xfff) == 0) ApplyMetadata(target, entry, isLink: false);
                break;

            default:
                _entries--;
                _notes.Add($"Entry '{entry.Name}' of type {entry.EntryType} was skipped.");
                break;
        }
    }

    /// <summary>
    /// Creates missing parents as plain directories and refuses a path through a symlink: following
    /// one (e.g. etc -> /etc) would write into the host.
    /// </summary>
    private void EnsureParentDirectories(string relative, string entryName)
    {
        var slash = relative.LastIndexOf('/');
        if (slash < 0) return;
        var parent = relative[..slash];
        if (_knownDirectories.Contains(parent)) return;
        var segments = parent.Split('/');
        var current = string.Empty;
        foreach (var segment in segments)
        {
            current = current.Length == 0 ? segment : current + "/" + segment;
            if (_knownDirectories.Contains(current)) continue;
            var full = Path.Combine(_root, current);
            var info = new FileInfo(full);
            if (info.LinkTarget is not null)
            {
                throw new VmToolsException("RootfsEntryThroughSymlink", FailureKind.SecurityError,
                    $"Archive entry '{entryName}' passes through the symbolic link '/{current}'; refusing to follow it.") { Target = entryName };
            }

            if (!Directory.Exists(full))
            {
                if (info.Exists) info.Delete();
                Directory.CreateDirectory(full);
            }

            _knownDirectories.Add(current);
        }
    }

    private static bool IsRealDirectory(string path)
    {
        var info = new DirectoryInfo(path);
        return info.Exists && info.LinkTarget is null;
    }

    /// <summary>Later entries replace earlier ones of the same name, as layer extraction does.</summary>
    private static void RemoveExisting(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null || info.Exists)
        {
            info.Delete();
        }
        else if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    private void ApplyMetadata(string path, TarEntry entry, bool isLink)
    {
        if (_preserveOwnership && UnixFileSystem.TryChangeOwner(path, entry.Uid, entry.Gid) != 0) _ownershipFailures++;
        if (entry is PaxTarEntry pax) ApplyExtendedAttributes(path, pax);
        if (isLink) return;
        // After chown, which clears set-id bits.
        File.SetUnixFileMode(path, entry.Mode & (UnixFileMode)0xfff);
        File.SetLastWriteTimeUtc(path, entry.ModificationTime.UtcDateTime);
    }

    private void ApplyExtendedAttributes(string path, PaxTarEntry entry)
    {
        const string prefix = "SCHILY.xattr.";
        foreach (var (key, value) in entry.ExtendedAttributes)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            // The BCL decodes PAX values as UTF-8; a binary value (a file capability) that was not valid
            // UTF-8 arrives with replacement characters and cannot be restored byte for byte.
            if (value.Contains('\uFFFD'))
            {
                _notes.Add($"Extended attribute {key[prefix.Length..]} of '{entry.Name}' holds binary data the archive reader cannot restore; it was left out.");
                continue;
            }

            if (UnixFileSystem.TrySetExtendedAttribute(path, key[prefix.Length..], Encoding.UTF8.GetBytes(value)) != 0)
            {
                _notes.Add($"Extended attribute {key[prefix.Length..]} of '{entry.Name}' could not be set.");
            }
        }
    }

    /// <summary>Directory modes and times last, deepest first: writing children would change them, and a read-only directory would refuse them.</summary>
    private void ApplyDirectoryMetadata()
    {
        foreach (var (relative, entry) in _directoryMetadata.OrderByDescending(d => d.Key.Length))
        {
            var path = relative.Length == 0 ? _root : Path.Combine(_root, relative);
            if (!IsRealDirectory(path)) continue;
            ApplyMetadata(path, entry, isLink: false);
        }
    }

    private static long RoundUp(long bytes) => (bytes + BlockSize - 1) / BlockSize * BlockSize;
}

/// <summary>What an extraction wrote: counts that size the filesystem, and notes worth a warning.</summary>
public sealed record RootfsSummary(string Root, int Entries, long ContentBytes, long AllocatedBytes, bool OwnershipPreserved, IReadOnlyList<string> Notes);
