namespace VmTools.Core.Vms;

/// <summary>
/// Where the host reaches a VM's sshd: the forwarded loopback port with user networking, port 22 of
/// the reserved address with tap networking on a VmTools bridge. A tap VM on the user's own bridge
/// has no address VmTools knows, so no endpoint.
/// </summary>
public sealed record VmSshEndpoint(string Host, int Port)
{
    public static VmSshEndpoint? Of(FlightVm vm) => vm.Network switch
    {
        VmNetworkMode.User when vm.SshPort is { } port => new VmSshEndpoint("127.0.0.1", port),
        VmNetworkMode.Tap when vm.IPAddress is { } address => new VmSshEndpoint(address, 22),
        _ => null,
    };

    public override string ToString() => $"{Host}:{Port}";
}
