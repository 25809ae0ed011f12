using System.Diagnostics;
using System.Management.Automation;
using VmTools.Tests.Images;
using VmTools.TestSupport;

namespace VmTools.Tests.EndToEnd;

/// <summary>
/// The whole flow on real components: a Debian base (systemd + cloud-init, debootstrap) imported into a
/// podman engine, built into a qcow2 by New-Qcow2Image, published to a local registry, pulled into an empty
/// state directory by examples/prepare-e2e.ps1, booted under qemu with a seed from New-CloudInitIso carrying a
/// .deb agent, certificates, a CA and registries.conf. The guest proves the result on its serial console,
/// then over SSH (Wait-FlightVm's banner check, Invoke-FlightVmCommand) through the NIC its seed named.
/// </summary>
[Trait("Category", "E2E")]
public sealed class PrepareE2eTests
{
    private const string BaseImage = "localhost/vmtools-e2e-base:bookworm";
    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _total = Stopwatch.StartNew();
    private readonly List<string> _stages = new();

    public PrepareE2eTests(ITestOutputHelper output) => _output = output;

    /// <summary>Checks the guest runs after the setup script (cloud-init runcmd), each printing one line to the serial console.</summary>
    private static readonly string[] GuestChecks =
    {
        "echo \"VMTOOLS-CHECK hostname $(hostname)\" > /dev/ttyS0",
        "echo \"VMTOOLS-CHECK package $(dpkg-query -W -f='${Status} ${Version}' flightctl-agent)\" > /dev/ttyS0",
        "echo \"VMTOOLS-CHECK service $(systemctl is-active flightctl-agent)\" > /dev/ttyS0",
        "for i in 1 2 3 4 5 6 7 8 9 10; do [ -s /var/lib/flightctl-agent/started ] && break; sleep 1; done; echo \"VMTOOLS-CHECK marker $(cut -d' ' -f1 /var/lib/flightctl-agent/started)\" > /dev/ttyS0",
        "echo \"VMTOOLS-CHECK certs $(stat -c '%a:%n' /etc/flightctl/certs/* | tr '\\n' ' ')\" > /dev/ttyS0",
        "echo \"VMTOOLS-CHECK ca $(openssl verify -CApath /etc/ssl/certs /etc/flightctl/certs/client-enrollment.crt 2>&1 | tail -n 1)\" > /dev/ttyS0",
        "echo \"VMTOOLS-CHECK registry $(grep location /etc/containers/registries.conf.d/custom-registry.conf)\" > /dev/ttyS0",
        "echo VMTOOLS-CHECKS-DONE > /dev/ttyS0",
    };

    [Fact]
    public void DebianBase_BuiltCachedPulledAndBooted_ConfiguresTheAgentThroughCloudInit()
    {
        RealComponent.RequireRoot("debootstrap, podman and the guest's device nodes need root");
        RealComponent.RequireProgram("qemu-system-x86_64", "apt-get install qemu-system-x86");
        try
        {
            Run();
        }
        finally
        {
            var report = $"E2E stages ({_total.Elapsed.TotalSeconds:0}s in all):\n  " + string.Join("\n  ", _stages);
            _output.WriteLine(report);
            if (Environment.GetEnvironmentVariable("VMTOOLS_E2E_LOG") is { Length: > 0 } log) File.AppendAllText(log, report + "\n");
        }
    }

    private void Run()
    {
        using var registry = Stage("registry on 127.0.0.1", RegistryServer.StartPlain);
        var repo = $"{registry.Host}/e2e/flightctl-device-qcow2";
        Stage("Debian base rootfs (debootstrap, cached per machine)", () => DebianBaseRootfs.EnsureTarball(m => _stages.Add("    " + m)));
        using var podman = Stage("podman API service", () => PodmanService.Start());
        Stage("import the base into the engine", () => DebianBaseRootfs.ImportInto(podman.Api, BaseImage));

        using (var builder = new CacheSession(new Dictionary<string, string?> { ["DOCKER_HOST"] = podman.Uri }))
        {
            builder.Ps.SetEnv("VMTOOLS_E2E_DISK", builder.Work.Combine("bin", "output", "qcow2", "disk.qcow2"));
            builder.Ps.SetEnv("VMTOOLS_E2E_IMAGE", BaseImage);
            var built = Stage("New-Qcow2Image + Save (miss -> build -> publish)", () => builder.Ps.Invoke(
                "Get-Qcow2Cache -Repository $args[0] -Build { New-Qcow2Image -Image $env:VMTOOLS_E2E_IMAGE -Path $env:VMTOOLS_E2E_DISK -RequireKernel -Force }",
                repo).Single());
            Assert.Equal("Built", built.Properties["Status"].Value.ToString());
        }

        using var runner = new CacheSession();
        var configDir = MakeVmConfig(runner.Work.Path, registry.Port);
        var key = runner.Work.Combine("id_ed25519");
        Programs.MustRun(RealComponent.RequireProgram("ssh-keygen", "apt-get install openssh-client"), "-q", "-t", "ed25519", "-N", "", "-C", "vmtools-e2e", "-f", key);
        var example = Path.Combine(RepositoryRoot(), "examples", "prepare-e2e.ps1");
        var vms = Stage("examples/prepare-e2e.ps1: pull into empty state, seed, start, wait for the agent", () => runner.Ps.Invoke(
            "& $args[0] -Repository $args[1] -ConfigDirectory $args[2] -OutputDirectory $args[3] -RunCommand $args[4] -SshAuthorizedKey $args[5] -UserName ci " +
            "-ReadyPattern 'VMTOOLS-CHECKS-DONE|VMTOOLS-SETUP: FAILED' -Timeout 1200 -Verbose",
            example, repo, configDir, runner.Work.Combine("cloud-init-data"), GuestChecks, File.ReadAllText(key + ".pub").Trim()));
        var vm = Assert.Single(vms);
        var name = (string)vm.Properties["Name"].Value;
        try
        {
            var stats = runner.Ps.Invoke("Get-Qcow2CacheStatistics").Single();
            Assert.Equal(1L, stats.Properties["Pulls"].Value); // the runner's state started empty: the base came from the registry
            var console = File.ReadAllText((string)vm.Properties["ConsoleLogPath"].Value);
            _stages.Add("    guest console: " + string.Join(" | ", console.Split('\n').Where(l => l.Contains("VMTOOLS-")).Select(l => l.Trim())));
            Assert.Contains("VMTOOLS-SETUP: OK", console);
            Assert.Contains("VMTOOLS-CHECK hostname e2e-vm-1", console);
            Assert.Contains("VMTOOLS-CHECK package install ok installed 0.0.1", console);
            Assert.Contains("VMTOOLS-CHECK service active", console);
            Assert.Contains("VMTOOLS-CHECK marker started", console);
            Assert.Contains("VMTOOLS-CHECK certs 600:/etc/flightctl/certs/client-enrollment.crt 600:/etc/flightctl/certs/client-enrollment.key", console);
            Assert.Matches(@"VMTOOLS-CHECK ca /etc/flightctl/certs/client-enrollment\.crt: OK", console);
            Assert.Contains($"VMTOOLS-CHECK registry location = \"10.0.2.2:{registry.Port}\"", console);

            // Over the network: the seed's network-config named the NIC by the MAC Start-FlightVm gave it,
            // the guest's ENI renderer brought it up with DHCP, and sshd answers on the forwarded port.
            Stage("Wait-FlightVm (SSH banner)", () => runner.Ps.Invoke("Wait-FlightVm -Name $args[0] -Timeout 120", name));
            var ssh = Stage("Invoke-FlightVmCommand over SSH", () => runner.Ps.Invoke(
                "Invoke-FlightVmCommand -Name $args[0] -User ci -KeyPath $args[1] -Command 'hostname; id -un; cat /sys/class/net/eth0/address; ip -4 -o addr show dev eth0'",
                name, key).Single());
            var output = (string)ssh.Properties["Output"].Value;
            _stages.Add("    ssh: " + output.Replace('\n', '|'));
            Assert.True(0.Equals(ssh.Properties["ExitCode"].Value), "ssh: " + ssh.Properties["ErrorOutput"].Value);
            Assert.Equal(new[] { "e2e-vm-1", "ci" }, output.Split('\n').Take(2));
            Assert.Contains((string)vm.Properties["MacAddress"].Value, output);
            Assert.Contains("inet 10.0.2.15/", output);
            var failing = runner.Ps.Invoke("Invoke-FlightVmCommand -Name $args[0] -User ci -KeyPath $args[1] -Command 'exit 7'", name, key).Single();
            Assert.Equal(7, failing.Properties["ExitCode"].Value);
        }
        finally
        {
            var handles = runner.Ps.Invoke("Get-VmHandles -Name $args[0]", name).Single();
            var pid = handles.Properties["Pid"]?.Value as int?;
            Stage("Stop-FlightVm + Remove-FlightVm", () => runner.Ps.Invoke("Stop-FlightVm -Name $args[0] -Timeout 15; Remove-FlightVm -Name $args[0]", name));
            if (pid is { } p) Assert.False(Directory.Exists($"/proc/{p}") && File.ReadAllText($"/proc/{p}/cmdline").Contains(name), $"qemu (pid {p}) is still running");
            Assert.False(Directory.Exists((string)vm.Properties["Directory"].Value), "the VM directory is left behind");
            Assert.Empty(runner.Ps.Invoke("Get-FlightVm"));
            Assert.DoesNotContain(Programs.Run("losetup", "-a").Stdout.Split('\n'), l => l.Contains(runner.Home.Path, StringComparison.Ordinal));
        }
    }

    /// <summary>A VM_CONFIG_DIR as prepare_vm_config.sh lays it out, with a real .deb agent and a real CA-signed client certificate.</summary>
    private static string MakeVmConfig(string parent, int registryPort)
    {
        var dir = Path.Combine(parent, "vm-config");
        Directory.CreateDirectory(Path.Combine(dir, "certs"));
        Directory.CreateDirectory(Path.Combine(dir, "packages"));
        var pki = TestPki.Create(Path.Combine(parent, "pki"));
        File.Copy(pki.ClientCertificate, Path.Combine(dir, "certs", "client-enrollment.crt"));
        File.Copy(pki.ClientKey, Path.Combine(dir, "certs", "client-enrollment.key"));
        File.Copy(pki.CaCertificate, Path.Combine(dir, "ca.pem"));
        TestAgentPackage.Build(Path.Combine(dir, "packages"));
        File.WriteAllText(Path.Combine(dir, "config.yaml"), "enrollment-service:\n  service:\n    server: https://10.0.2.2:7443\n");
        File.WriteAllText(Path.Combine(dir, "registry.conf"), $"[[registry]]\nlocation = \"10.0.2.2:{registryPort}\"\ninsecure = true\n");
        return dir;
    }

    private T Stage<T>(string name, Func<T> work)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            return work();
        }
        finally
        {
            _stages.Add($"{clock.Elapsed.TotalSeconds,7:0.0}s  {name}");
            _output.WriteLine(_stages[^1]);
        }
    }

    private void Stage(string name, Action work) => Stage(name, () => { work(); return 0; });

    /// <summary>The checkout: the module is laid out at &lt;root&gt;/out/VmTools/VmTools.psd1.</summary>
    private static string RepositoryRoot() => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(PowerShellHost.ModuleManifest)!, "..", ".."));
}
