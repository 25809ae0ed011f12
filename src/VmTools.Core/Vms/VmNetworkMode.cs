namespace VmTools.Core.Vms;

public enum VmNetworkMode
{
    /// <summary>qemu's user-mode stack with a host port forwarded to guest port 22; needs no privileges.</summary>
    User,

    /// <summary>A tap device on a host bridge; needs root (CAP_NET_ADMIN).</summary>
    Tap,

    /// <summary>No network device at all.</summary>
    None,
}
