using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace VmTools.TestSupport;

/// <summary>
/// A second "host" on this machine: a network namespace joined to this one by a veth pair with
/// addresses in a private /30, running its own sshd (Debian openssh-server) on a fixed port with a
/// host key and an authorized client key generated here. Only the namespace's own address is ever
/// connected to. zfs-fuse's control socket is a file (/var/run/zfs/zfs_socket), so zfs commands run
/// over this ssh reach the machine's one zfs-fuse daemon: a second pool there plays the other host's
/// pool. Everything (sshd, namespace, veth) goes away on dispose, also after a failed test.
/// </summary>
public sealed class SshTestHost : IAsyncLifetime
{
    public const int Port = 2222;
    private const string Prefix = "vmtr";

    private readonly TempDirectory _dir = new("vmtools-sshhost");
    private readonly string _tag = Guid.NewGuid().ToString("N")[..8];
    private Process? _sshd;
    private bool _namespaceCreated;

    /// <summary>Why the rig could not be built, or null when sshd answers.</summary>
    public string? UnavailableReason { get; private set; }

    public string Namespace => Prefix + _tag;

    /// <summary>The namespace side of the veth: the replica host's address.</summary>
    public string Address { get; private set; } = string.Empty;

    public string User => "root";

    /// <summary>The client's private key, accepted by the sshd.</summary>
    public string IdentityFile => _dir.Combine("client", "id_ed25519");

    /// <summary>A known_hosts file that records the sshd's current host key.</summary>
    public string KnownHostsFile => _dir.Combine("client", "known_hosts");

    public string Directory => _dir.Path;

    private string ServerDir => _dir.Combine("server");

    private string HostKey => System.IO.Path.Combine(ServerDir, "host_ed25519");

    public string Destination(string dataset, int port = Port) => $"ssh://{User}@{Address}:{port.ToString(CultureInfo.InvariantCulture)}/{dataset}";

    public ValueTask InitializeAsync()
    {
        if (!RealComponent.IsRoot) { UnavailableReason = "needs root: creates a network namespace and runs sshd"; return ValueTask.CompletedTask; }
        foreach (var (program, package) in new[] { ("/usr/sbin/sshd", "openssh-server"), ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client"), ("ip", "iproute2") })
        {
            if (RealComponent.Which(program) is null) { UnavailableReason = $"'{program}' is not installed (apt-get install {package})"; return ValueTask.CompletedTask; }
        }

        try
        {
            // A random /30 in 10.254/16: the host side is .1, the namespace side .2.
            var b = Random.Shared.Next(0, 256);
            var c = Random.Shared.Next(0, 64) * 4;
            var host = $"10.254.{b}.{c + 1}";
            Address = $"10.254.{b}.{c + 2}";
            string outer = Prefix + _tag + "a", inner = Prefix + _tag + "b";
            Programs.MustRun("ip", "netns", "add", Namespace);
            _namespaceCreated = true;
            Programs.MustRun("ip", "link", "add", outer, "type", "veth", "peer", "name", inner);
            Programs.MustRun("ip", "link", "set", inner, "netns", Namespace);
            Programs.MustRun("ip", "addr", "add", host + "/30", "dev", outer);
            Programs.MustRun("ip", "link", "set", outer, "up");
            Programs.MustRun("ip", "netns", "exec", Namespace, "ip", "addr", "add", Address + "/30", "dev", inner);
            Programs.MustRun("ip", "netns", "exec", Namespace, "ip", "link", "set", inner, "up");
            Programs.MustRun("ip", "netns", "exec", Namespace, "ip", "link", "set", "lo", "up");

            System.IO.Directory.CreateDirectory(ServerDir);
            System.IO.Directory.CreateDirectory(_dir.Combine("client"));
            // sshd refuses to start without its privilege separation directory.
            System.IO.Directory.CreateDirectory("/run/sshd");
            Programs.MustRun("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmtools-test-client", "-f", IdentityFile);
            File.Copy(IdentityFile + ".pub", System.IO.Path.Combine(ServerDir, "authorized_keys"));
            File.WriteAllText(System.IO.Path.Combine(ServerDir, "sshd_config"), string.Join('\n',
                $"Port {Port}",
                $"ListenAddress {Address}",
                $"HostKey {HostKey}",
                $"PidFile {System.IO.Path.Combine(ServerDir, "sshd.pid")}",
                $"AuthorizedKeysFile {System.IO.Path.Combine(ServerDir, "authorized_keys")}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "MaxStartups 100",
                "LogLevel ERROR",
                "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                string.Empty));
            RegenerateHostKey(recordInKnownHosts: true);
            StartSshd();
        }
        catch (Exception e)
        {
            UnavailableReason = "could not build the ssh test host: " + e.Message;
        }

        return ValueTask.CompletedTask;
    }

    public void Require()
    {
        if (UnavailableReason is { } reason) RealComponent.Unavailable(reason);
    }

    /// <summary>Gives the sshd a new host key (restarting it); the known_hosts file keeps the old one unless told otherwise.</summary>
    public void ChangeHostKey(bool recordInKnownHosts)
    {
        StopSshd();
        RegenerateHostKey(recordInKnownHosts);
        StartSshd();
    }

    /// <summary>Stops the sshd: nothing listens on the port until <see cref="StartSshd"/>.</summary>
    public void StopSshd()
    {
        if (_sshd is null) return;
        try { _sshd.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _sshd.WaitForExit(10_000);
        _sshd.Dispose();
        _sshd = null;
    }

    /// <summary>Kills the sshd and every session it serves: a connection cut mid-transfer.</summary>
    public void KillSshdAndSessions()
    {
        StopSshd();
        // Sessions are children of the listener only until they re-exec; reap what is left in the namespace.
        var (_, pids, _) = Programs.Run("ip", "netns", "pids", Namespace);
        foreach (var pid in pids.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Programs.Run("kill", "-9", pid);
        }
    }

    public void StartSshd()
    {
        var sshd = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "netns", "exec", Namespace, "/usr/sbin/sshd", "-f", System.IO.Path.Combine(ServerDir, "sshd_config"), "-D", "-e" }) sshd.ArgumentList.Add(a);
        _sshd = Process.Start(sshd)!;
        _sshd.ErrorDataReceived += (_, _) => { };
        _sshd.OutputDataReceived += (_, _) => { };
        _sshd.BeginErrorReadLine();
        _sshd.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(Address, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_sshd.HasExited)
            {
                Thread.Sleep(100);
            }
            catch (SocketException e)
            {
                throw new InvalidOperationException($"sshd in {Namespace} never listened on {Address}:{Port} (exited: {_sshd.HasExited}): {e.Message}");
            }
        }
    }

    /// <summary>Runs a command on the test host over ssh with the test key, as the code under test would.</summary>
    public (int ExitCode, string Stdout, string Stderr) Ssh(string remoteCommand)
        => Programs.Run("ssh", "-p", Port.ToString(CultureInfo.InvariantCulture), "-i", IdentityFile, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + KnownHostsFile, "--", User + "@" + Address, remoteCommand);

    private void RegenerateHostKey(bool recordInKnownHosts)
    {
        File.Delete(HostKey);
        File.Delete(HostKey + ".pub");
        Programs.MustRun("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmtools-test-host", "-f", HostKey);
        if (!recordInKnownHosts && File.Exists(KnownHostsFile)) return;
        var pub = File.ReadAllText(HostKey + ".pub").Trim().Split(' ');
        File.WriteAllText(KnownHostsFile, $"[{Address}]:{Port.ToString(CultureInfo.InvariantCulture)} {pub[0]} {pub[1]}\n");
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            KillSshdAndSessions();
        }
        finally
        {
            // Deleting the namespace deletes the veth pair with it.
            if (_namespaceCreated) Programs.Run("ip", "netns", "delete", Namespace);
            _dir.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
