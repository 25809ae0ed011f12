using System.Globalization;

namespace VmTools.Core.Vms;

/// <summary>
/// Where this host reaches a VM's SSH server: the one place that decides it, for ssh, scp and anything
/// else that connects to the guest's port 22. With user networking qemu forwards a loopback port.
/// </summary>
public sealed record VmSshEndpoint(string Host, int Port)
{
    /// <summary>The endpoint of <paramref name="vm"/>; a VM SSH cannot reach fails with <c>VmSshUnavailable</c>.</summary>
    public static VmSshEndpoint Of(FlightVm vm)
    {
        if (vm.Network == VmNetworkMode.User && vm.SshPort is { } port) return new VmSshEndpoint("127.0.0.1", port);
        throw new VmToolsException("VmSshUnavailable", FailureKind.InvalidOperation,
            $"VM '{vm.Name}' has no SSH endpoint (network {vm.Network}); SSH reaches VMs started with -Network User.") { Target = vm.Name };
    }

    /// <summary>The host as scp's <c>user@host:path</c> needs it: an IPv6 address in brackets.</summary>
    public string UriHost => Host.Contains(':') ? "[" + Host + "]" : Host;

    public override string ToString() => UriHost + ":" + Port.ToString(CultureInfo.InvariantCulture);
}
