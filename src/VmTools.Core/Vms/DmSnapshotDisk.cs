using System.Globalization;
using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// A device-mapper snapshot over two loop devices, for raw bases: the base attached read-only, a sparse
/// COW file beside the VM, and <c>dmsetup create NAME --table "0 SECTORS snapshot BASE COW P 8"</c>.
/// Any failure undoes what was attached, in reverse order, and reports every error.
/// </summary>
public static class DmSnapshotDisk
{
    public static async Task<VmHandles> AttachAsync(ICommandRunner runner, string basePath, string cowPath, string dmName, CancellationToken ct)
    {
        string? baseLoop = null;
        string? cowLoop = null;
        try
        {
            baseLoop = (await Run(runner, ct, "losetup", "-f", "--show", "--read-only", basePath).ConfigureAwait(false)).Trim();
            cowLoop = (await Run(runner, ct, "losetup", "-f", "--show", cowPath).ConfigureAwait(false)).Trim();
            var sectorsText = (await Run(runner, ct, "blockdev", "--getsz", baseLoop).ConfigureAwait(false)).Trim();
            if (!long.TryParse(sectorsText, NumberStyles.None, CultureInfo.InvariantCulture, out var sectors) || sectors <= 0)
            {
                throw new VmToolsException("VmDmSnapshotFailed", FailureKind.InvalidData, $"blockdev --getsz {baseLoop} printed '{sectorsText}', not a sector count.");
            }

            await Run(runner, ct, "dmsetup", "create", dmName, "--table", $"0 {sectors} snapshot {baseLoop} {cowLoop} P 8").ConfigureAwait(false);
            return new VmHandles { BaseLoop = baseLoop, CowLoop = cowLoop, DmName = dmName, DmDevice = "/dev/mapper/" + dmName };
        }
        catch (VmToolsException e)
        {
            var undo = await DetachAsync(runner, new VmHandles { BaseLoop = baseLoop, CowLoop = cowLoop }, CancellationToken.None).ConfigureAwait(false);
            var message = "dm-snapshot setup failed: " + e.Message + (undo.Count > 0 ? "; rollback: " + string.Join("; ", undo) : string.Empty);
            throw new VmToolsException("VmDmSnapshotFailed", FailureKind.InvalidOperation, message, e) { Target = dmName };
        }
    }

    /// <summary>Removes the dm target, then the COW loop, then the base loop; returns every error, stops at none.</summary>
    public static async Task<List<string>> DetachAsync(ICommandRunner runner, VmHandles handles, CancellationToken ct)
    {
        var errors = new List<string>();
        if (handles.DmName is { } dm)
        {
            // The target stays busy for a moment after qemu exits; a few retries ride that out.
            for (var attempt = 1; ; attempt++)
            {
                var r = await runner.RunAsync(CommandSpec.Of("dmsetup", "remove", dm), ct).ConfigureAwait(false);
                if (r.Succeeded || IsGone(r)) break;
                if (attempt < 3 && r.StandardError.Contains("busy", StringComparison.OrdinalIgnoreCase))
                {
                    await Task.Delay(200, ct).ConfigureAwait(false);
                    continue;
                }

                errors.Add(Describe(r));
                break;
            }
        }

        foreach (var loop in new[] { handles.CowLoop, handles.BaseLoop })
        {
            if (loop is null) continue;
            var r = await runner.RunAsync(CommandSpec.Of("losetup", "-d", loop), ct).ConfigureAwait(false);
            if (!r.Succeeded && !IsGone(r)) errors.Add(Describe(r));
        }

        return errors;
    }

    private static bool IsGone(CommandResult r)
        => r.StandardError.Contains("No such device", StringComparison.OrdinalIgnoreCase) || r.StandardError.Contains("not found", StringComparison.OrdinalIgnoreCase)
           || r.StandardError.Contains("No such file", StringComparison.OrdinalIgnoreCase);

    private static string Describe(CommandResult r) => $"'{r.Command}' exited {r.ExitCode}: {r.StandardError.Trim()}";

    private static async Task<string> Run(ICommandRunner runner, CancellationToken ct, string file, params string[] args)
    {
        var r = await runner.RunAsync(CommandSpec.Of(file, args), ct).ConfigureAwait(false);
        r.EnsureSuccess("VmDmSnapshotFailed");
        return r.StandardOutput;
    }
}
