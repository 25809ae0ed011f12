namespace VmTools.Core.KubeVirt;

/// <summary>
/// How the VM's one NIC joins the pod network. Both serve DHCP to the guest, which is what the seed's
/// network-config asks for (DHCP on the NIC with the seed's MAC).
/// </summary>
public enum KubeVirtNicBinding
{
    /// <summary>NAT behind the pod's address; works on every cluster and keeps live migration.</summary>
    Masquerade,

    /// <summary>The guest takes the pod's address itself.</summary>
    Bridge,
}
