using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Volumes;

/// <summary>A VM data disk image inside a volume: a sparse raw file (SetLength), or qcow2 via qemu-img.</summary>
internal static class DiskImageFile
{
    public static async Task CreateAsync(ICommandRunner runner, string path, long sizeBytes, DiskImageFormat format, CancellationToken cancellationToken)
    {
        if (File.Exists(path))
        {
            throw new VmToolsException("VolumeDiskExists", FailureKind.ResourceExists, $"'{path}' already exists.") { Target = path };
        }

        if (format == DiskImageFormat.Raw)
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            fs.SetLength(sizeBytes);
            return;
        }

        var r = await runner.RunAsync(CommandSpec.Of("qemu-img", "create", "-q", "-f", "qcow2", path, sizeBytes.ToString(CultureInfo.InvariantCulture)), cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            try { File.Delete(path); } catch (IOException) { }
            r.EnsureSuccess("VolumeDiskCreateFailed");
        }
    }
}
