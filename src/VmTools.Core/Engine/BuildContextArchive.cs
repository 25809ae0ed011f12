using System.Formats.Tar;
using System.IO.Pipes;

namespace VmTools.Core.Engine;

/// <summary>
/// The build context as the Docker build API wants it: a tar of the context directory (symlinks kept as
/// links, never followed), plus the Containerfile when it lives outside the context. Produced on the
/// fly through a pipe, so a large context is never staged on disk.
/// </summary>
public static class BuildContextArchive
{
    /// <summary>The name a Containerfile from outside the context gets inside the archive.</summary>
    public const string OutsideContainerfileName = ".vmtools.Containerfile";

    /// <summary>Starts writing the archive; read it from the returned stream. The task faults if writing fails.</summary>
    public static (Stream Reader, Task Writing) Open(string contextDirectory, string? outsideContainerfile, CancellationToken ct)
    {
        var server = new AnonymousPipeServerStream(PipeDirection.Out);
        var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        var writing = Task.Run(async () =>
        {
            await using (server.ConfigureAwait(false))
            {
                try
                {
                    await WriteAsync(contextDirectory, outsideContainerfile, server, ct).ConfigureAwait(false);
                }
                catch (IOException) when (ct.IsCancellationRequested)
                {
                    // The reader went away because the build was cancelled.
                }
            }
        }, CancellationToken.None);
        return (client, writing);
    }

    public static async Task WriteAsync(string contextDirectory, string? outsideContainerfile, Stream output, CancellationToken ct)
    {
        var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await using (writer.ConfigureAwait(false))
        {
            var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false };
            var entries = Directory.EnumerateFileSystemEntries(contextDirectory, "*", options).Order(StringComparer.Ordinal);
            foreach (var path in entries)
            {
                ct.ThrowIfCancellationRequested();
                var name = Path.GetRelativePath(contextDirectory, path).Replace('\\', '/');
                await writer.WriteEntryAsync(path, name, ct).ConfigureAwait(false);
            }

            if (outsideContainerfile is not null)
            {
                await writer.WriteEntryAsync(outsideContainerfile, OutsideContainerfileName, ct).ConfigureAwait(false);
            }
        }
    }
}
