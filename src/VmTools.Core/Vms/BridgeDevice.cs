using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>A bridge in the host kernel as /sys shows it, and the ip commands that make or delete one VmTools created.</summary>
public static class BridgeDevice
{
    public static bool Exists(string name) => Directory.Exists("/sys/class/net/" + name);

    /// <summary>The interfaces enslaved to the bridge (taps of VMs, or whatever else someone attached).</summary>
    public static IReadOnlyList<string> Ports(string name)
    {
        var brif = $"/sys/class/net/{name}/brif";
        return Directory.Exists(brif)
            ? Directory.EnumerateFileSystemEntries(brif).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : Array.Empty<string>();
    }

    /// <summary>Creates the bridge when missing and gives it its gateway address; both steps are idempotent, so racing starters agree.</summary>
    public static async Task CreateAsync(ICommandRunner runner, VmBridge bridge, CancellationToken ct)
    {
        if (!Exists(bridge.Name))
        {
            var add = await runner.RunAsync(CommandSpec.Of("ip", "link", "add", "name", bridge.Name, "type", "bridge"), ct).ConfigureAwait(false);
            if (!add.Succeeded && !add.StandardError.Contains("File exists", StringComparison.Ordinal)) add.EnsureSuccess("VmBridgeCreateFailed");
        }

        (await runner.RunAsync(CommandSpec.Of("ip", "addr", "replace", $"{bridge.Gateway}/{VmBridge.PrefixLength}", "dev", bridge.Name), ct).ConfigureAwait(false)).EnsureSuccess("VmBridgeCreateFailed");
        (await runner.RunAsync(CommandSpec.Of("ip", "link", "set", bridge.Name, "up"), ct).ConfigureAwait(false)).EnsureSuccess("VmBridgeCreateFailed");
    }

    /// <summary>Deletes the bridge; one already gone is not an error. Returns the error text, or null.</summary>
    public static async Task<string?> DeleteAsync(ICommandRunner runner, string name, CancellationToken ct)
    {
        var r = await runner.RunAsync(CommandSpec.Of("ip", "link", "del", name), ct).ConfigureAwait(false);
        if (r.Succeeded || r.StandardError.Contains("Cannot find device", StringComparison.Ordinal)) return null;
        return $"'{r.Command}' exited {r.ExitCode}: {r.StandardError.Trim()}";
    }
}
