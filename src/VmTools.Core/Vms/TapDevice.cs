using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>A tap interface on a host bridge.</summary>
public static class TapDevice
{
    /// <summary>Creates the tap and enslaves it to <paramref name="bridge"/>, which must exist (<see cref="BridgeNetwork"/> makes VmTools' own).</summary>
    public static async Task CreateAsync(ICommandRunner runner, string tap, string bridge, CancellationToken ct)
    {
        (await runner.RunAsync(CommandSpec.Of("ip", "tuntap", "add", "dev", tap, "mode", "tap"), ct).ConfigureAwait(false)).EnsureSuccess("VmTapCreateFailed");
        try
        {
            (await runner.RunAsync(CommandSpec.Of("ip", "link", "set", tap, "master", bridge), ct).ConfigureAwait(false)).EnsureSuccess("VmTapCreateFailed");
            (await runner.RunAsync(CommandSpec.Of("ip", "link", "set", tap, "up"), ct).ConfigureAwait(false)).EnsureSuccess("VmTapCreateFailed");
        }
        catch (VmToolsException)
        {
            await DeleteAsync(runner, tap, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Deletes the tap; a tap that is already gone is not an error. Returns the error text, or null.</summary>
    public static async Task<string?> DeleteAsync(ICommandRunner runner, string tap, CancellationToken ct)
    {
        var r = await runner.RunAsync(CommandSpec.Of("ip", "link", "del", tap), ct).ConfigureAwait(false);
        if (r.Succeeded || r.StandardError.Contains("Cannot find device", StringComparison.Ordinal)) return null;
        return $"'{r.Command}' exited {r.ExitCode}: {r.StandardError.Trim()}";
    }

    public static bool Exists(string tap) => Directory.Exists("/sys/class/net/" + tap);
}
