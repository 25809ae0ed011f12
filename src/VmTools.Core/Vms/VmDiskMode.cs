namespace VmTools.Core.Vms;

/// <summary>How a VM gets a writable disk without ever writing its base image.</summary>
public enum VmDiskMode
{
    /// <summary>A qcow2 file whose backing file is the base (qemu-img create -b).</summary>
    Overlay,

    /// <summary>A device-mapper snapshot over two loop devices: the base read-only and a sparse COW file.</summary>
    DmSnapshot,
}
