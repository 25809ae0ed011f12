namespace VmTools.Core.Vms;

/// <summary>
/// A per-VM lock across processes (flock through FileShare.None), held while a verb or reconcile
/// changes the VM, so reconcile never tears down a VM another process is still starting. A bridge
/// VmTools manages has one too, held while its device, hosts file and DHCP server are changed.
/// </summary>
public sealed class VmLock : IDisposable
{
    private readonly FileStream _stream;

    private VmLock(FileStream stream) => _stream = stream;

    public static string PathFor(State.VmToolsPaths paths, string vmId) => Path.Combine(paths.LockDirectory, "vm-" + vmId + ".lock");

    public static string PathForBridge(State.VmToolsPaths paths, string bridge) => Path.Combine(paths.LockDirectory, "bridge-" + bridge + ".lock");

    public static VmLock? TryAcquire(State.VmToolsPaths paths, string vmId) => TryOpen(paths, PathFor(paths, vmId));

    public static async Task<VmLock> AcquireAsync(State.VmToolsPaths paths, FlightVm vm, TimeSpan timeout, CancellationToken ct)
        => await WaitAsync(paths, PathFor(paths, vm.Id), timeout, $"VM '{vm.Name}'", vm.Name, ct).ConfigureAwait(false);

    public static async Task<VmLock> AcquireBridgeAsync(State.VmToolsPaths paths, string bridge, TimeSpan timeout, CancellationToken ct)
        => await WaitAsync(paths, PathForBridge(paths, bridge), timeout, $"Bridge '{bridge}'", bridge, ct).ConfigureAwait(false);

    public void Dispose() => _stream.Dispose();

    private static VmLock? TryOpen(State.VmToolsPaths paths, string path)
    {
        Directory.CreateDirectory(paths.LockDirectory);
        try
        {
            return new VmLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task<VmLock> WaitAsync(State.VmToolsPaths paths, string path, TimeSpan timeout, string what, string target, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (TryOpen(paths, path) is { } held) return held;
            if (DateTime.UtcNow >= deadline)
            {
                throw new VmToolsException("VmBusy", FailureKind.ResourceBusy, $"{what} is locked by another operation (lock {path}).") { Target = target };
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }
}
