namespace VmTools.Core.Vms;

/// <summary>
/// A per-VM lock across processes (flock through FileShare.None), held while a verb or reconcile
/// changes the VM, so reconcile never tears down a VM another process is still starting.
/// </summary>
public sealed class VmLock : IDisposable
{
    private readonly FileStream _stream;

    private VmLock(FileStream stream) => _stream = stream;

    public static string PathFor(State.VmToolsPaths paths, string vmId) => Path.Combine(paths.LockDirectory, "vm-" + vmId + ".lock");

    public static VmLock? TryAcquire(State.VmToolsPaths paths, string vmId)
    {
        Directory.CreateDirectory(paths.LockDirectory);
        try
        {
            return new VmLock(new FileStream(PathFor(paths, vmId), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static async Task<VmLock> AcquireAsync(State.VmToolsPaths paths, FlightVm vm, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (TryAcquire(paths, vm.Id) is { } held) return held;
            if (DateTime.UtcNow >= deadline)
            {
                throw new VmToolsException("VmBusy", FailureKind.ResourceBusy, $"VM '{vm.Name}' is locked by another operation (lock {PathFor(paths, vm.Id)}).") { Target = vm.Name };
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    public void Dispose() => _stream.Dispose();
}
