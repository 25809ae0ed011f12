using VmTools.Core.Vms;

namespace VmTools.TestSupport;

/// <summary>VM records made without booting anything, for tests that only need the state store to say "this VM uses that base".</summary>
public static class VmRecords
{
    public static FlightVm OnBase(string vmDirectory, string name, string imagePath)
    {
        var id = VmNaming.NewId();
        var dir = Path.Combine(vmDirectory, id);
        return new FlightVm
        {
            Name = name, Id = id, State = VmState.Stopped, ImagePath = imagePath, DiskMode = VmDiskMode.Overlay,
            OverlayPath = Path.Combine(dir, "overlay.qcow2"), Directory = dir, ConsoleLogPath = Path.Combine(dir, "console.log"),
            QmpSocketPath = Path.Combine(dir, "qmp.sock"), Network = VmNetworkMode.None, MacAddress = MacAddresses.New(),
            MemoryMB = 64, CpuCount = 1, CreatedAt = DateTimeOffset.UtcNow,
        };
    }
}
