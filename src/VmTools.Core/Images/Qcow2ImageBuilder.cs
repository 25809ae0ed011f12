using System.Diagnostics;
using VmTools.Core.Engine;
using VmTools.Core.Host;

namespace VmTools.Core.Images;

/// <summary>
/// Makes a bootable base disk: root filesystem (engine build, engine image, or tarball) → tar stream →
/// unpacked tree → ext4 → qcow2, with the kernel and initrd from /boot kept beside the disk for direct
/// kernel boot. All intermediate files live in one hidden work folder beside the output, removed on
/// every exit path; the qcow2 appears under its name only when complete.
/// </summary>
public sealed class Qcow2ImageBuilder
{
    public const string Activity = "New-Qcow2Image";

    private readonly ICommandRunner _runner;

    public Qcow2ImageBuilder(ICommandRunner runner) => _runner = runner;

    /// <summary>Where the kernel and initrd of <paramref name="qcow2Path"/> are kept: disk.qcow2 → disk.vmlinuz, disk.initrd.img.</summary>
    public static (string Kernel, string Initrd) BootFilePaths(string qcow2Path)
    {
        var stem = Path.Combine(Path.GetDirectoryName(qcow2Path)!, Path.GetFileNameWithoutExtension(qcow2Path));
        return (stem + ".vmlinuz", stem + ".initrd.img");
    }

    public async Task<Qcow2Image> BuildAsync(Qcow2ImageRequest request, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var output = Path.GetFullPath(request.OutputPath);
        if (Directory.Exists(output) || (File.Exists(output) && !request.Overwrite))
        {
            throw new VmToolsException("Qcow2ImageExists", FailureKind.ResourceExists,
                $"'{output}' already exists; pass -Force to replace it.") { Target = output };
        }

        var folder = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(folder);
        var work = Path.Combine(folder, $".{Path.GetFileName(output)}.vmtools-build-{Guid.NewGuid():N}"[..^20]);
        Directory.CreateDirectory(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            var root = Path.Combine(work, "rootfs");
            var (summary, imageId) = await UnpackAsync(request, new RootfsExtractor(root), progress, clock, ct).ConfigureAwait(false);
            foreach (var note in summary.Notes) request.Warn?.Invoke(note);

            var minimum = Ext4DiskWriter.MinimumSize(summary);
            if (request.Size is { } wanted && wanted < minimum)
            {
                throw new VmToolsException("Qcow2ImageTooSmall", FailureKind.InvalidArgument,
                    $"The root filesystem needs at least {minimum / (1 << 20)} MiB ({summary.Entries} entries, {summary.ContentBytes / (1 << 20)} MiB of data); {wanted / (1 << 20)} MiB was asked for.") { Target = output };
            }

            var size = request.Size ?? Ext4DiskWriter.DefaultSize(summary);
            var boot = BootFileFinder.Find(root);
            if (boot.KernelPath is null)
            {
                if (request.RequireKernel)
                {
                    throw new VmToolsException("Qcow2ImageKernelNotFound", FailureKind.NotFound,
                        $"{request.Source} has no kernel under /boot (vmlinuz-*); install one (Debian: linux-image-amd64) or drop -RequireKernel.") { Target = request.Source.ToString() };
                }

                request.Warn?.Invoke($"{request.Source} has no kernel under /boot (vmlinuz-*): the disk cannot be booted with -kernel; it needs its own boot loader.");
            }
            else if (boot.InitrdPath is null)
            {
                request.Warn?.Invoke($"Kernel {boot.Version} has no initrd under /boot (initrd.img-{boot.Version}); it must have its disk drivers built in.");
            }

            Report(progress, "Making ext4 filesystem", summary.AllocatedBytes, summary.AllocatedBytes, clock);
            request.Log?.Invoke($"Making a {size / (1 << 20)} MiB ext4 filesystem from {summary.Entries} entries ({summary.ContentBytes / (1 << 20)} MiB), then qcow2.");
            var staged = Path.Combine(work, "disk.qcow2");
            await new Ext4DiskWriter(_runner).WriteAsync(summary, size, request.Label, staged, ct).ConfigureAwait(false);

            // Kernel and initrd first, disk last: the disk under its name means the whole set is complete.
            var (kernelOut, initrdOut) = BootFilePaths(output);
            PlaceOrRemove(boot.KernelPath, kernelOut);
            PlaceOrRemove(boot.InitrdPath, initrdOut);
            ct.ThrowIfCancellationRequested();
            File.Move(staged, output, overwrite: request.Overwrite);
            return new Qcow2Image
            {
                Path = output,
                KernelPath = boot.KernelPath is null ? null : kernelOut,
                InitrdPath = boot.InitrdPath is null ? null : initrdOut,
                KernelVersion = boot.Version,
                Size = new FileInfo(output).Length,
                VirtualSize = size,
                ImageId = imageId,
                Source = request.Source.ToString(),
                Files = summary.Entries,
                ContentBytes = summary.ContentBytes,
                Duration = clock.Elapsed,
            };
        }
        finally
        {
            WorkTree.Remove(work);
        }
    }

    private async Task<(RootfsSummary Summary, string? ImageId)> UnpackAsync(Qcow2ImageRequest request, RootfsExtractor extractor,
        IProgress<TransferProgress>? progress, Stopwatch clock, CancellationToken ct)
    {
        if (request.Source is Qcow2ImageSource.RootfsArchive archive)
        {
            var total = new FileInfo(archive.Path).Exists ? new FileInfo(archive.Path).Length : 0;
            var item = "Unpacking " + Path.GetFileName(archive.Path);
            // Progress counts bytes read from the file, so it ends at 100% whatever the compression.
            var tar = RootfsArchiveFile.OpenRead(archive.Path, new Reporter(n => Report(progress, item, n, total, clock)));
            await using (tar.ConfigureAwait(false))
            {
                return (await extractor.ExtractAsync(tar, ct).ConfigureAwait(false), null);
            }
        }

        using var engine = await ContainerEngine.ConnectAsync(EngineEndpoint.Resolve(request.EngineHost), ct).ConfigureAwait(false);
        request.Log?.Invoke($"Using {engine.Description} at {engine.Endpoint}.");
        string imageId;
        switch (request.Source)
        {
            case Qcow2ImageSource.Containerfile build:
                imageId = await engine.BuildAsync(build.Build, request.Log,
                    new Reporter(n => Report(progress, "Sending build context", n, null, clock)), ct).ConfigureAwait(false);
                break;
            case Qcow2ImageSource.Image image:
                imageId = await engine.ResolveImageAsync(image.Reference, image.AlwaysPull, request.Log, ct).ConfigureAwait(false);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(request), request.Source, "Unknown image source.");
        }

        request.Log?.Invoke($"Exporting the filesystem of image {imageId}.");
        var imageSize = (await engine.InspectAsync(imageId, ct).ConfigureAwait(false))?.Size;
        RootfsSummary? summary = null;
        await engine.ExportFilesystemAsync(imageId, async (stream, token) =>
        {
            // The export tar is a little larger than the image's size (headers), so the total is a hint.
            var counted = new CountingReadStream(stream, new Reporter(n => Report(progress, "Exporting filesystem", n, imageSize is > 0 ? Math.Max(n, imageSize.Value) : null, clock)));
            summary = await extractor.ExtractAsync(counted, token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return (summary!, imageId);
    }

    private static void PlaceOrRemove(string? source, string destination)
    {
        if (source is null)
        {
            // A kernel left from an earlier build of this path would not match the new disk.
            AtomicFile.TryDelete(destination);
            return;
        }

        File.Move(source, destination, overwrite: true);
    }

    private static void Report(IProgress<TransferProgress>? progress, string item, long done, long? total, Stopwatch clock)
        => progress?.Report(new TransferProgress(Activity, item, done, total, clock.Elapsed));

    private sealed class Reporter(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
