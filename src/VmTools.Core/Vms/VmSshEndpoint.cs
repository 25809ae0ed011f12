using System.Globalization;

namespace VmTools.Core.Vms;

/// <summary>
/// Where this host reaches a VM's SSH server: the one place that decides it, for ssh, scp, the readiness
/// banner and anything else that connects to the guest's port 22. With user networking qemu forwards a
/// loopback port; with tap networking on a VmTools bridge it is port 22 of the address reserved for the
/// VM. A tap VM on the user's own bridge has no address VmTools knows, so no endpoint.
/// </summary>
public sealed record VmSshEndpoint(string Host, int Port)
{
    /// <summary>The endpoint of <paramref name="vm"/>, or null when SSH cannot reach it.</summary>
    public static VmSshEndpoint? TryOf(FlightVm vm) => vm.Network switch
    {
        VmNetworkMode.User when vm.SshPort is { } port => new VmSshEndpoint("127.0.0.1", port),
        VmNetworkMode.Tap when vm.IPAddress is { } address => new VmSshEndpoint(address, 22),
        _ => null,
    };

    /// <summary>The endpoint of <paramref name="vm"/>; a VM SSH cannot reach fails with <c>VmSshUnavailable</c>.</summary>
    public static VmSshEndpoint Of(FlightVm vm) => TryOf(vm)
        ?? throw new VmToolsException("VmSshUnavailable", FailureKind.InvalidOperation,
            $"VM '{vm.Name}' has no SSH endpoint (network {vm.Network}): SSH reaches VMs started with -Network User, or -Network Tap on a bridge VmTools created.") { Target = vm.Name };

    /// <summary>The host as scp's <c>user@host:path</c> needs it: an IPv6 address in brackets.</summary>
    public string UriHost => Host.Contains(':') ? "[" + Host + "]" : Host;

    public override string ToString() => UriHost + ":" + Port.ToString(CultureInfo.InvariantCulture);
}
