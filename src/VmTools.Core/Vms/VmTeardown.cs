using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// Releases everything a VM holds in the kernel: its qemu process (only if the liveness rule still
/// identifies it), the dm target, the loops, the tap. No step stops the others; every error is
/// returned. The scratch file is removed only when everything was released, so a retry still knows
/// what is left.
/// </summary>
public static class VmTeardown
{
    public static async Task<List<string>> ReleaseAsync(ICommandRunner runner, FlightVm vm, VmHandles? handles, ProcessEntry? process, CancellationToken ct)
    {
        var errors = new List<string>();
        if (process is not null)
        {
            ProcessSignal.Send(process, ProcessSignal.SigKill);
            if (!await ProcessSignal.WaitForExitAsync(process, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false))
            {
                errors.Add($"qemu (pid {process.Pid}) did not exit after SIGKILL");
            }
        }

        if (handles is not null)
        {
            try
            {
                errors.AddRange(await DmSnapshotDisk.DetachAsync(runner, handles, ct).ConfigureAwait(false));
            }
            catch (VmToolsException e)
            {
                errors.Add(e.Message);
            }
        }

        var tap = handles?.TapDevice ?? (vm.TapName is { } t && TapDevice.Exists(t) ? t : null);
        if (tap is not null)
        {
            try
            {
                if (await TapDevice.DeleteAsync(runner, tap, ct).ConfigureAwait(false) is { } e) errors.Add(e);
            }
            catch (VmToolsException e)
            {
                errors.Add(e.Message);
            }
        }

        if (errors.Count == 0)
        {
            HandleStore.Clear(vm);
            AtomicFile.TryDelete(QemuCommandLine.PidFilePath(vm));
            AtomicFile.TryDelete(vm.QmpSocketPath);
        }

        return errors;
    }
}
