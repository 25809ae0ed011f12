namespace VmTools.Core.Volumes;

/// <summary>The format of a VM data disk image kept inside a volume.</summary>
public enum DiskImageFormat
{
    /// <summary>A sparse raw file: no tool needed, any hypervisor reads it.</summary>
    Raw,

    /// <summary>A qcow2 file made by qemu-img.</summary>
    Qcow2,
}
