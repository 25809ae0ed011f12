using System.Diagnostics;
using VmTools.Core.Host;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// Writes an ISO 9660 image with Joliet and Rock Ridge in one front-to-back pass. File data is
/// streamed from the sources (runs of zeros become holes), the image goes to a hidden temp file
/// with mode 0600 (seeds carry keys) and is renamed over the target only when complete.
/// Synchronous: local file I/O gains nothing from async here, and async state machines over the
/// module's types are JIT-compiled on a process's first call (ReadyToRun cannot pregenerate them).
/// </summary>
public static class IsoImageWriter
{
    private const int CopyBufferSize = 1 << 20;
    private const UnixFileMode ImageMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static CloudInitIso Write(IsoContent content, string path, IsoImageOptions options,
        IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var target = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new VmToolsException("IsoOutputDirectoryNotFound", FailureKind.NotFound,
                $"Cannot write '{target}': the directory '{directory}' does not exist.") { Target = target };
        }

        if (Directory.Exists(target))
        {
            throw new VmToolsException("IsoOutputIsDirectory", FailureKind.InvalidArgument,
                $"Cannot write the image to '{target}': it is a directory.") { Target = target };
        }

        var layout = new IsoLayout(content, options.Timestamp);
        var temp = AtomicFile.TempPathFor(target);
        try
        {
            using (var output = AtomicFile.Create(temp, ImageMode))
            {
                WriteMetadata(output, layout, options);
                WriteFiles(output, layout, progress, cancellationToken);
                output.SetLength(layout.TotalSectors * IsoEncoding.SectorSize);
                // No fsync: a seed is a per-run artifact rebuilt at will, and the fsync cost more than the
                // whole write (100 MB: 128 ms vs 58 ms). The rename still keeps readers from a partial image.
                output.Flush(flushToDisk: false);
            }

            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            AtomicFile.TryDelete(temp);
            throw;
        }

        return new CloudInitIso(target, layout.TotalSectors * IsoEncoding.SectorSize, options.VolumeLabel, content.Files);
    }

    private static void WriteMetadata(FileStream output, IsoLayout layout, IsoImageOptions options)
    {
        var fields = new VolumeFields(options.VolumeLabel, "LINUX", "VMTOOLS", layout.TotalSectors, layout.Time);
        var primaryRoot = layout.Resolve(layout.PrimaryRecords[layout.Root][0], joliet: false);
        var jolietRoot = layout.Resolve(layout.JolietRecords[layout.Root][0], joliet: true);
        // The copies in the descriptors carry no System Use field (ECMA-119 8.4.18: 34 bytes).
        primaryRoot = primaryRoot with { SystemUse = Array.Empty<byte>() };

        WriteAt(output, 16, VolumeDescriptor.Primary(fields, primaryRoot, new PathTableLocation(layout.PrimaryPathTableSize, layout.PrimaryPathTableL, layout.PrimaryPathTableM)));
        WriteAt(output, 17, VolumeDescriptor.Joliet(fields, jolietRoot, new PathTableLocation(layout.JolietPathTableSize, layout.JolietPathTableL, layout.JolietPathTableM)));
        WriteAt(output, 18, VolumeDescriptor.Terminator());
        WriteAt(output, layout.PrimaryPathTableL, PathTable.Encode(layout.PrimaryPathTable, bigEndian: false));
        WriteAt(output, layout.PrimaryPathTableM, PathTable.Encode(layout.PrimaryPathTable, bigEndian: true));
        WriteAt(output, layout.JolietPathTableL, PathTable.Encode(layout.JolietPathTable, bigEndian: false));
        WriteAt(output, layout.JolietPathTableM, PathTable.Encode(layout.JolietPathTable, bigEndian: true));

        foreach (var dir in layout.PrimaryDirectories)
        {
            WriteAt(output, layout.PrimaryExtent(dir), EncodeDirectory(layout, layout.PrimaryRecords[dir], joliet: false));
        }

        if (layout.ContinuationEnd > layout.ContinuationStart)
        {
            var area = new byte[(layout.ContinuationEnd - layout.ContinuationStart) * IsoEncoding.SectorSize];
            foreach (var r in layout.PrimaryDirectories.SelectMany(d => layout.PrimaryRecords[d]).Where(r => r.Continuation is not null))
            {
                r.Continuation!.CopyTo(area, (r.ContinuationSector - layout.ContinuationStart) * IsoEncoding.SectorSize + r.ContinuationOffset);
            }

            WriteAt(output, layout.ContinuationStart, area);
        }

        foreach (var dir in layout.JolietDirectories)
        {
            WriteAt(output, layout.JolietExtent(dir), EncodeDirectory(layout, layout.JolietRecords[dir], joliet: true));
        }
    }

    /// <summary>A plain loop: LINQ over the DirectoryRecord value type would be JIT-compiled on a first call.</summary>
    private static byte[] EncodeDirectory(IsoLayout layout, List<PlannedRecord> planned, bool joliet)
    {
        var buffer = new MemoryStream();
        var sector = new byte[IsoEncoding.SectorSize];
        var used = 0;
        foreach (var p in planned)
        {
            var r = layout.Resolve(p, joliet);
            if (used + r.Length > IsoEncoding.SectorSize)
            {
                buffer.Write(sector);
                Array.Clear(sector);
                used = 0;
            }

            used += r.WriteTo(sector.AsSpan(used));
        }

        buffer.Write(sector);
        return buffer.ToArray();
    }

    private static void WriteFiles(FileStream output, IsoLayout layout, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        long total = 0;
        foreach (var f in layout.Files) total += f.Size;
        long done = 0;
        var clock = Stopwatch.StartNew();
        var buffer = new byte[CopyBufferSize];
        foreach (var file in layout.Files)
        {
            ct.ThrowIfCancellationRequested();
            output.Position = layout.FileExtent(file) * IsoEncoding.SectorSize;
            if (file.Content is { } bytes)
            {
                output.Write(bytes);
                done += bytes.Length;
                continue;
            }

            using var source = OpenSource(file);
            long copied = 0;
            while (copied < file.Size)
            {
                var want = (int)Math.Min(buffer.Length, file.Size - copied);
                ct.ThrowIfCancellationRequested();
                var read = source.Read(buffer, 0, want);
                if (read == 0) break;
                // Zero runs stay holes: a sparse payload stays sparse and costs no write.
                if (buffer.AsSpan(0, read).IndexOfAnyExcept((byte)0) < 0) output.Seek(read, SeekOrigin.Current);
                else output.Write(buffer, 0, read);
                copied += read;
                done += read;
                progress?.Report(new TransferProgress("Writing seed image", file.IsoPath, done, total, clock.Elapsed));
            }

            if (copied != file.Size || source.ReadByte() != -1)
            {
                throw new VmToolsException("IsoSourceChanged", FailureKind.ReadError,
                    $"'{file.SourcePath}' changed size while the image was written (expected {file.Size} bytes).") { Target = file.SourcePath };
            }
        }

        progress?.Report(new TransferProgress("Writing seed image", "done", done, total, clock.Elapsed));
    }

    private static FileStream OpenSource(IsoFileNode file)
    {
        try
        {
            return new FileStream(file.SourcePath!, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite, Options = FileOptions.SequentialScan });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VmToolsException("IsoSourceNotFound", FailureKind.NotFound,
                $"The source file '{file.SourcePath}' for '{file.IsoPath}' disappeared before the image was written.", e) { Target = file.SourcePath };
        }
        catch (UnauthorizedAccessException e)
        {
            throw new VmToolsException("IsoSourceUnreadable", FailureKind.PermissionDenied,
                $"Cannot read '{file.SourcePath}' for '{file.IsoPath}': {e.Message}", e) { Target = file.SourcePath };
        }
    }

    private static void WriteAt(FileStream output, long sector, byte[] bytes)
    {
        output.Position = sector * IsoEncoding.SectorSize;
        output.Write(bytes);
    }
}
