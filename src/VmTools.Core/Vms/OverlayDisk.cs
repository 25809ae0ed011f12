using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>A qcow2 overlay whose backing file is the base: the guest writes land here, the base is only read.</summary>
public static class OverlayDisk
{
    public static async Task CreateAsync(ICommandRunner runner, string basePath, string overlayPath, CancellationToken ct)
    {
        var format = DiskFormat.Detect(basePath);
        // The overlay receives the guest's writes (its keys among them): made 0600 first, and qemu-img's
        // O_CREAT|O_TRUNC keeps the mode of a file that exists.
        PrivateFiles.Precreate(overlayPath);
        var result = await runner.RunAsync(CommandSpec.Of("qemu-img", "create", "-q", "-f", "qcow2", "-b", Path.GetFullPath(basePath), "-F", format, overlayPath), ct).ConfigureAwait(false);
        result.EnsureSuccess("VmOverlayCreateFailed");
    }
}
