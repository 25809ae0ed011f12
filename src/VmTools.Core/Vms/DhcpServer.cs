using System.Globalization;
using System.Text;
using VmTools.Core.Host;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// The DHCP server of one VmTools bridge: Debian's dnsmasq (dnsmasq-base), started daemonized so it
/// outlives the process that started it, as qemu does. It hands out static leases only (one line
/// per VM MAC in its hosts file, re-read on SIGHUP), serves no DNS (--port=0), binds to the bridge
/// alone and reads no host configuration (--conf-file=/dev/null). Its files live in
/// <c>&lt;state&gt;/net/&lt;bridge&gt;/</c> (0700). A pid is signalled only when /proc shows it is
/// dnsmasq running with this bridge's pid file, so a recycled pid is never hit.
/// </summary>
public static class DhcpServer
{
    public const string Program = "dnsmasq";

    public static string DirectoryFor(VmToolsPaths paths, string bridge) => Path.Combine(paths.NetworkDirectory, bridge);

    public static string HostsPath(VmToolsPaths paths, string bridge) => Path.Combine(DirectoryFor(paths, bridge), "hosts");

    public static string LeasesPath(VmToolsPaths paths, string bridge) => Path.Combine(DirectoryFor(paths, bridge), "leases");

    public static string PidPath(VmToolsPaths paths, string bridge) => Path.Combine(DirectoryFor(paths, bridge), "dnsmasq.pid");

    public static string LogPath(VmToolsPaths paths, string bridge) => Path.Combine(DirectoryFor(paths, bridge), "dnsmasq.log");

    /// <summary>dnsmasq's path (PATH, then the sbin folders a non-login root shell may lack), or null.</summary>
    public static string? Locate()
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(new[] { "/usr/sbin", "/sbin" });
        return dirs.Select(d => Path.Combine(d, Program)).FirstOrDefault(File.Exists);
    }

    public static string Require()
        => Locate() ?? throw new VmToolsException("VmDhcpServerUnavailable", FailureKind.ResourceUnavailable,
            "-Network Tap on a bridge VmTools creates runs a DHCP server, dnsmasq, which is not installed (apt-get install dnsmasq-base). A bridge you created yourself needs none.") { Target = Program };

    /// <summary>The bridge's running dnsmasq, or null when none runs (or the pid file names some other process).</summary>
    public static ProcessEntry? Find(VmToolsPaths paths, string bridge)
    {
        var pidFile = PidPath(paths, bridge);
        string text;
        try { text = File.ReadAllText(pidFile); }
        catch (IOException) { return null; }
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0) return null;
        var entry = ProcessTable.Read("/proc", pid);
        if (entry is null) return null;
        string[] argv;
        try { argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0'); }
        catch (IOException) { return null; }
        return Path.GetFileName(argv[0]) == Program && argv.Contains("--pid-file=" + pidFile, StringComparer.Ordinal) ? entry : null;
    }

    /// <summary>Writes the static leases atomically (0600), one <c>MAC,address</c> line each, as dnsmasq's --dhcp-hostsfile reads them.</summary>
    public static void WriteHosts(VmToolsPaths paths, VmBridge bridge, IEnumerable<(string MacAddress, string IPAddress)> leases)
    {
        PrivateFiles.CreateDirectory(DirectoryFor(paths, bridge.Name));
        var text = new StringBuilder();
        foreach (var (mac, ip) in leases) text.Append(mac).Append(',').Append(ip).Append('\n');
        AtomicFile.WriteAllText(HostsPath(paths, bridge.Name), text.ToString(), PrivateFiles.FileMode);
    }

    /// <summary>Starts the bridge's dnsmasq when none runs, else makes the running one re-read its hosts file.</summary>
    public static async Task<ProcessEntry> EnsureRunningAsync(ICommandRunner runner, VmToolsPaths paths, VmBridge bridge, CancellationToken ct)
    {
        if (Find(paths, bridge.Name) is { } running)
        {
            ProcessSignal.Send(running, ProcessSignal.SigHup);
            return running;
        }

        var program = Require();
        var dir = DirectoryFor(paths, bridge.Name);
        PrivateFiles.CreateDirectory(dir);
        // dnsmasq creates these with its own umask; made first they keep 0600.
        PrivateFiles.Precreate(LeasesPath(paths, bridge.Name));
        PrivateFiles.Precreate(LogPath(paths, bridge.Name));
        AtomicFile.TryDelete(PidPath(paths, bridge.Name));
        var network = bridge.Network;
        var args = new[]
        {
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=" + bridge.Name,
            "--bind-interfaces",
            $"--dhcp-range={network.Host(VmBridge.FirstGuestHost)},static,{Ipv4Network.Format(network.Mask)},infinite",
            "--dhcp-hostsfile=" + HostsPath(paths, bridge.Name),
            "--dhcp-leasefile=" + LeasesPath(paths, bridge.Name),
            // The only DHCP server on a bridge it owns: it may answer a renewal it has no lease for.
            "--dhcp-authoritative",
            "--pid-file=" + PidPath(paths, bridge.Name),
            "--log-facility=" + LogPath(paths, bridge.Name),
            // It re-reads the hosts file on SIGHUP from a 0700 folder, which an unprivileged user could not.
            "--user=root",
        };
        var r = await runner.RunAsync(new CommandSpec(program, args) { WorkingDirectory = dir }, ct).ConfigureAwait(false);
        r.EnsureSuccess("VmDhcpServerFailed");
        return Find(paths, bridge.Name) ?? throw new VmToolsException("VmDhcpServerFailed", FailureKind.InvalidOperation,
            $"dnsmasq for bridge '{bridge.Name}' exited right after starting. Its log: {Tail(LogPath(paths, bridge.Name))}") { Target = bridge.Name };
    }

    /// <summary>Makes a running dnsmasq re-read its hosts file; no server running is not an error.</summary>
    public static void Reload(VmToolsPaths paths, string bridge)
    {
        if (Find(paths, bridge) is { } running) ProcessSignal.Send(running, ProcessSignal.SigHup);
    }

    /// <summary>SIGTERM, then SIGKILL after 5 s. Returns the error text, or null (also when none ran).</summary>
    public static async Task<string?> StopAsync(VmToolsPaths paths, string bridge, CancellationToken ct)
    {
        if (Find(paths, bridge) is not { } running) return null;
        ProcessSignal.Send(running, ProcessSignal.SigTerm);
        if (!await ProcessSignal.WaitForExitAsync(running, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false))
        {
            ProcessSignal.Send(running, ProcessSignal.SigKill);
            if (!await ProcessSignal.WaitForExitAsync(running, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false))
            {
                return $"dnsmasq (pid {running.Pid}) of bridge '{bridge}' did not exit after SIGKILL";
            }
        }

        AtomicFile.TryDelete(PidPath(paths, bridge));
        return null;
    }

    private static string Tail(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            return text.Length <= 600 ? text : "…" + text[^600..];
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }
}
