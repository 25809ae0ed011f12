using System.Formats.Tar;
using System.Text;
using Microsoft.Win32.SafeHandles;
using VmTools.Core.Host;

namespace VmTools.Core.Images;

/// <summary>
/// Unpacks a root filesystem tar (a container export or a rootfs tarball) into a directory that
/// <c>mkfs.ext4 -d</c> copies verbatim: modes, owners (as root), symlinks, hard links, device nodes,
/// fifos, xattrs and mtimes. Every write goes through <see cref="BeneathRoot"/>: parents are resolved
/// from the root's fd without following any symlink, entries are created O_EXCL|O_NOFOLLOW and their
/// metadata set on the entry itself, so an archive can say anything and still write only beneath the
/// root. Symlinks in the archive are kept as symlinks for the guest and never followed here; an entry
/// whose path runs through one is refused, as is a hard link to anything but a regular file this
/// extraction wrote.
/// </summary>
public sealed class RootfsExtractor
{
    private const int BlockSize = 4096;
    private const string EntryInvalid = "Qcow2ImageRootfsEntryInvalid";

    // A container engine leaves these marker files in exports; in a VM they would make systemd and
    // tools believe they run inside a container.
    private static readonly HashSet<string> ContainerMarkers = new(StringComparer.Ordinal) { ".dockerenv", "run/.containerenv" };

    // While unpacking, directories stay private and writable; their recorded modes come at the end.
    private const UnixFileMode StagingDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly string _root;
    private readonly bool _preserveOwnership;
    private readonly Dictionary<string, TarEntry> _directoryMetadata = new(StringComparer.Ordinal);
    // Regular files this extraction created (filesystem, inode): the only things a hard link may name.
    private readonly HashSet<(ulong FileSystem, ulong Inode)> _extractedFiles = new();
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
        Directory.CreateDirectory(_root, StagingDirectoryMode);
    }

    /// <summary>Reads <paramref name="tar"/> to its end and writes every entry under the root.</summary>
    public async Task<RootfsSummary> ExtractAsync(Stream tar, CancellationToken cancellationToken)
    {
        using var root = BeneathRoot.Open(_root);
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
                try
                {
                    await WriteEntryAsync(root, entry, cancellationToken).ConfigureAwait(false);
                }
                catch (PathNotBeneathRootException e)
                {
                    throw Invalid(entry.Name, e.Reason + "; nothing is written through or outside the root", e);
                }
            }
        }

        ApplyDirectoryMetadata(root);
        if (_skippedDevices > 0) _notes.Add($"{_skippedDevices} device node(s) were skipped: creating them needs root.");
        if (_ownershipFailures > 0) _notes.Add($"{_ownershipFailures} file owner(s) could not be set.");
        if (!_preserveOwnership) _notes.Add("Not running as root: files in the image belong to the current user instead of their recorded owners.");
        return new RootfsSummary(_root, _entries, _contentBytes, _allocatedBytes, _preserveOwnership && _ownershipFailures == 0, _notes.ToArray());
    }

    private async Task WriteEntryAsync(BeneathRoot root, TarEntry entry, CancellationToken ct)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes or TarEntryType.LongLink or TarEntryType.LongPath)
        {
            return;
        }

        var relative = Normalize(entry.Name, entry.Name, "it climbs out of the root with '..'");
        if (ContainerMarkers.Contains(relative)) return;
        if (relative.Length == 0)
        {
            if (entry.EntryType == TarEntryType.Directory) _directoryMetadata[string.Empty] = entry;
            return;
        }

        using var parent = root.OpenParent(relative, createMissing: true, out var name);
        var existing = parent.Stat(name);
        _entries++;
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (existing is not { IsDirectory: true })
                {
                    if (existing is not null) parent.Remove(name);
                    parent.MakeDirectory(name, StagingDirectoryMode);
                }

                _directoryMetadata[relative] = entry;
                _allocatedBytes += BlockSize;
                break;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                if (existing is not null) parent.Remove(name);
                using (var file = parent.CreateFile(name, UnixFileMode.UserRead | UnixFileMode.UserWrite))
                {
                    if (entry.DataStream is { } data) await CopyAsync(data, file, ct).ConfigureAwait(false);
                    ApplyMetadata(file, entry);
                    if (UnixFileSystem.StatAt(file, string.Empty, out var created) == 0) _extractedFiles.Add((created.FileSystem, created.Inode));
                }

                _contentBytes += entry.Length;
                _allocatedBytes += RoundUp(entry.Length);
                break;

            case TarEntryType.SymbolicLink:
                if (existing is not null) parent.Remove(name);
                parent.MakeSymlink(name, entry.LinkName);
                // Short targets live in the inode itself; longer ones take a block.
                if (Encoding.UTF8.GetByteCount(entry.LinkName) >= 60) _allocatedBytes += BlockSize;
                SetOwner(parent, name, entry);
                parent.SetTimes(name, entry.ModificationTime);
                break;

            case TarEntryType.HardLink:
                WriteHardLink(root, parent, name, existing, relative, entry);
                break;

            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                // Made inside the private staging root only (mkfs.ext4 -d copies them into the image);
                // never anywhere else on the host.
                if (existing is not null) parent.Remove(name);
                var (major, minor) = entry is PosixTarEntry posix ? (posix.DeviceMajor, posix.DeviceMinor) : (0, 0);
                var type = entry.EntryType switch
                {
                    TarEntryType.CharacterDevice => UnixFileSystem.S_IFCHR,
                    TarEntryType.BlockDevice => UnixFileSystem.S_IFBLK,
                    _ => UnixFileSystem.S_IFIFO,
                };
                var mode = entry.Mode & (UnixFileMode)0xfff;
                var made = parent.TryMakeNode(name, type, mode, major, minor);
                if (made != 0)
                {
                    // Without root (EPERM) the node is left out; udev/devtmpfs recreate /dev at boot anyway.
                    _skippedDevices++;
                    _entries--;
                    break;
                }

                SetOwner(parent, name, entry);
                parent.SetSpecialFileMode(name, mode);
                parent.SetTimes(name, entry.ModificationTime);
                break;

            default:
                _entries--;
                _notes.Add($"Entry '{entry.Name}' of type {entry.EntryType} was skipped.");
                break;
        }
    }

    /// <summary>
    /// A hard link may only name a regular file this extraction already wrote beneath the root: not a
    /// directory, a symlink, a device, nor anything reached through a symlink or from outside.
    /// </summary>
    private void WriteHardLink(BeneathRoot root, BeneathDirectory parent, string name, UnixFileSystem.EntryStat? existing, string relative, TarEntry entry)
    {
        var linked = Normalize(entry.LinkName, entry.Name, $"it is a hard link to '{entry.LinkName}', which climbs out of the root with '..'");
        if (linked.Length == 0 || linked == relative)
        {
            throw Invalid(entry.Name, $"it is a hard link to '{entry.LinkName}', which is not a file");
        }

        BeneathDirectory source;
        string sourceName;
        try
        {
            source = root.OpenParent(linked, createMissing: false, out sourceName);
        }
        catch (PathNotBeneathRootException e)
        {
            throw Invalid(entry.Name, $"it is a hard link to '{entry.LinkName}', which is not a regular file written earlier by this archive ({e.Reason})", e);
        }

        using (source)
        {
            var target = source.Stat(sourceName);
            if (target is not { IsRegularFile: true } file || !_extractedFiles.Contains((file.FileSystem, file.Inode)))
            {
                throw Invalid(entry.Name, $"it is a hard link to '{entry.LinkName}', which is not a regular file written earlier by this archive");
            }

            if (existing is not null) parent.Remove(name);
            parent.HardLink(source, sourceName, name);
        }
    }

    private static async Task CopyAsync(Stream data, SafeFileHandle file, CancellationToken ct)
    {
        var buffer = new byte[1 << 20];
        long offset = 0;
        int n;
        while ((n = await data.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await RandomAccess.WriteAsync(file, buffer.AsMemory(0, n), offset, ct).ConfigureAwait(false);
            offset += n;
        }
    }

    /// <summary>Owner, xattrs, mode and time on the entry's own fd: chown first (it clears set-id bits and capabilities).</summary>
    private void ApplyMetadata(SafeFileHandle fd, TarEntry entry)
    {
        if (_preserveOwnership && UnixFileSystem.ChangeOwner(fd, entry.Uid, entry.Gid) != 0) _ownershipFailures++;
        if (entry is PaxTarEntry pax) ApplyExtendedAttributes(fd, pax);
        var rc = UnixFileSystem.ChangeMode(fd, (uint)(entry.Mode & (UnixFileMode)0xfff));
        if (rc == 0) rc = UnixFileSystem.SetTimes(fd, entry.ModificationTime);
        if (rc != 0) throw new IOException($"Setting the mode or time of '{entry.Name}' failed (errno {rc}).");
    }

    /// <summary>Owner of a symlink, device node or fifo, set without following it. Such entries get no xattrs: only an fd of the entry itself may carry them, and opening a device node is not harmless.</summary>
    private void SetOwner(BeneathDirectory parent, string name, TarEntry entry)
    {
        if (_preserveOwnership && parent.TrySetOwner(name, entry.Uid, entry.Gid) != 0) _ownershipFailures++;
        if (entry is PaxTarEntry pax && pax.ExtendedAttributes.Keys.Any(k => k.StartsWith("SCHILY.xattr.", StringComparison.Ordinal)))
        {
            _notes.Add($"Extended attributes of '{entry.Name}' ({entry.EntryType}) were left out.");
        }
    }

    private void ApplyExtendedAttributes(SafeFileHandle fd, PaxTarEntry entry)
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

            if (UnixFileSystem.SetExtendedAttribute(fd, key[prefix.Length..], Encoding.UTF8.GetBytes(value)) != 0)
            {
                _notes.Add($"Extended attribute {key[prefix.Length..]} of '{entry.Name}' could not be set.");
            }
        }
    }

    /// <summary>
    /// Directory modes and times last, deepest first: writing children would change them, and a read-only
    /// directory would refuse them. Each is opened afresh beneath the root, so a directory that a later
    /// entry replaced (say by a symlink to a host folder) is skipped, not followed.
    /// </summary>
    private void ApplyDirectoryMetadata(BeneathRoot root)
    {
        foreach (var (relative, entry) in _directoryMetadata.OrderByDescending(d => d.Key.Length))
        {
            using var directory = root.TryOpenDirectory(relative);
            if (directory is null) continue;
            ApplyMetadata(directory.Handle, entry);
        }
    }

    /// <summary>The entry's path relative to the root; a name that climbs out of it is refused.</summary>
    private static string Normalize(string name, string entryName, string whyRefused)
    {
        try
        {
            return LayerEntryPath.Normalize(name);
        }
        catch (VmToolsException e)
        {
            throw Invalid(entryName, whyRefused, e);
        }
    }

    private static VmToolsException Invalid(string entryName, string why, Exception? inner = null)
        => new(EntryInvalid, FailureKind.SecurityError, $"Root filesystem entry '{entryName}' is refused: {why}.", inner) { Target = entryName };

    private static long RoundUp(long bytes) => (bytes + BlockSize - 1) / BlockSize * BlockSize;
}

/// <summary>What an extraction wrote: counts that size the filesystem, and notes worth a warning.</summary>
public sealed record RootfsSummary(string Root, int Entries, long ContentBytes, long AllocatedBytes, bool OwnershipPreserved, IReadOnlyList<string> Notes);
