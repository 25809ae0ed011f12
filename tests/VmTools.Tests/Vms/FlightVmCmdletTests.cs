using System.Diagnostics;
using System.Management.Automation;
using VmTools.Core.Host;
using VmTools.Core.State;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Tests.Vms;

/// <summary>The VM cmdlets in a real PowerShell engine: pipelines, parameter binding, ErrorIds.</summary>
[Collection("qemu-vms")]
public sealed class FlightVmCmdletTests
{
    [Fact]
    public void StartFromACacheEntryLikeObject_WaitsForTheMarker_PipesIntoHandlesStopAndRemove()
    {
        using var s = new VmSession();
        // An object shaped like Get-Qcow2Cache's Qcow2CacheEntry binds by its Path property.
        var vm = s.Ps.Invoke("""
            param($base, $kernel, $initrd, $marker, $kargs)
            $entry = [pscustomobject]@{ Reference = 'r/x:base-qcow2-abc'; Tag = 'base-qcow2-abc'; Digest = 'sha256:00'; Path = $base; Size = 1; Status = 'Hit'; Source = 'Local' }
            $entry | Start-FlightVm -Name pipe -Kernel $kernel -Initrd $initrd -KernelArgs $kargs -MemoryMB 96 -Wait -ReadyPattern $marker -Timeout 120
            """, s.BaseImage, FlightVmGuest.Kernel, FlightVmGuest.Initrd, FlightVmGuest.ReadyMarker, FlightVmGuest.KernelArgs).Single();
        Assert.Equal("VmTools.Core.Vms.FlightVm", vm.BaseObject.GetType().FullName);
        Assert.Equal("pipe", vm.Properties["Name"].Value);
        Assert.Equal("Running", vm.Properties["State"].Value.ToString());
        Assert.Equal(s.BaseImage, vm.Properties["ImagePath"].Value);

        var handles = s.Ps.Invoke("Get-FlightVm pipe | Get-VmHandles").Single();
        Assert.True((bool)handles.Properties["Alive"].Value);
        Assert.True((int)handles.Properties["Pid"].Value > 0);

        var stopped = s.Ps.Invoke("Get-FlightVm pipe | Stop-FlightVm -Timeout 60 -PassThru").Single();
        Assert.Equal("Stopped", stopped.Properties["State"].Value.ToString());
        Assert.False((bool)s.Ps.Invoke("Get-VmHandles pipe").Single().Properties["Alive"].Value);

        s.Ps.Invoke("Get-FlightVm pipe | Remove-FlightVm");
        Assert.Equal("VmNotFound,VmTools.Commands.GetFlightVmCommand", s.Ps.ExpectError("Get-FlightVm pipe").FullyQualifiedErrorId);
        Assert.Empty(s.Ps.Invoke("Get-FlightVm"));
    }

    [Fact]
    public void Start_WithCountVolumeAndCloudInitObjects_BindsThemByProperty()
    {
        using var s = new VmSession();
        var vol = Path.Combine(s.Home, "vol.raw");
        var iso = Path.Combine(s.Home, "seed.iso");
        File.WriteAllBytes(vol, new byte[1 << 20]);
        File.WriteAllBytes(iso, new byte[1 << 16]);
        var vms = s.Ps.Invoke("""
            param($p, $iso)
            $seed = [pscustomobject]@{ Path = $iso; Size = 65536; VolumeLabel = 'cidata'; Files = @('user-data') }
            Start-FlightVm @p -Count 2 -CloudInit $seed
            """, s.GuestParameters("duo"), iso);
        Assert.Equal(new[] { "duo-1", "duo-2" }, vms.Select(v => v.Properties["Name"].Value.ToString()).ToArray());
        Assert.All(vms, v => Assert.Equal(iso, v.Properties["CloudInitPath"].Value));
        Assert.NotEqual(vms[0].Properties["SshPort"].Value, vms[1].Properties["SshPort"].Value);

        var withVolume = s.Ps.Invoke("""
            param($p, $vol)
            Start-FlightVm @p -Volume ([pscustomobject]@{ Name = 'data'; DiskImagePath = $vol })
            """, s.GuestParameters("vol"), vol).Single();
        Assert.Equal(vol, ((IEnumerable<string>)withVolume.Properties["VolumePaths"].Value).Single());

        // A second VM on the same read-write volume: qemu's image lock refuses it, the record says why.
        var clash = s.Ps.ExpectError("param($p, $vol) Start-FlightVm @p -Volume $vol", s.GuestParameters("clash"), vol);
        Assert.Equal("VmStartFailed,VmTools.Commands.StartFlightVmCommand", clash.FullyQualifiedErrorId);
        Assert.Equal("Broken", s.Ps.Invoke("(Get-FlightVm clash).State").Single().ToString());
        s.Ps.Invoke("Get-FlightVm | Remove-FlightVm -Force");
        Assert.Empty(s.Ps.Invoke("Get-FlightVm"));
    }

    /// <summary>The seed's network-config names the NIC by MAC, so the NIC must get exactly that MAC.</summary>
    [Fact]
    public void Start_GivesTheNicTheSeedsMac_AndOneSeedNamesOneVm()
    {
        using var s = new VmSession();
        var seed = s.Ps.Invoke("param($dir) New-CloudInitConfig -Hostname macvm | New-CloudInitIso -Path ([IO.Path]::Combine($dir, 'seed.iso'))", s.Home).Single();
        var mac = (string)seed.Properties["MacAddress"].Value;
        Assert.Matches("^52:54:00(:[0-9a-f]{2}){3}$", mac);

        var vm = s.Ps.Invoke("param($p, $seed) Start-FlightVm @p -CloudInit $seed", s.GuestParameters("macvm"), seed).Single();
        Assert.Equal(mac, vm.Properties["MacAddress"].Value);
        var pid = (int)s.Ps.Invoke("(Get-VmHandles macvm).Pid").Single().BaseObject;
        Assert.Contains("mac=" + mac, File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '));

        Assert.Equal("VmMacAddressInUse,VmTools.Commands.StartFlightVmCommand", s.ExpectErrorOf("param($p, $seed) Start-FlightVm @p -CloudInit $seed", s.GuestParameters("again"), seed));
        Assert.Equal("VmMacAddressWithCount,VmTools.Commands.StartFlightVmCommand",
            s.ExpectErrorOf("param($p, $seed) Start-FlightVm @p -CloudInit $seed -Count 2", s.GuestParameters("pair"), seed));
        Assert.Equal("VmMacAddressMismatch,VmTools.Commands.StartFlightVmCommand",
            s.ExpectErrorOf("param($p, $seed) Start-FlightVm @p -CloudInit $seed -MacAddress 52:54:00:00:00:01", s.GuestParameters("other"), seed));
        Assert.Equal("VmMacAddressInvalid,VmTools.Commands.StartFlightVmCommand",
            s.ExpectErrorOf("param($p, $seed) Start-FlightVm @p -CloudInit $seed.Path -MacAddress 01:00:5e:00:00:01", s.GuestParameters("multicast"), seed));
        Assert.Equal(new[] { "macvm" }, s.Ps.Invoke("Get-FlightVm").Select(v => v.Properties["Name"].Value.ToString()).ToArray());

        // By path (a string, as CI steps pass it on), the MAC is read from the image itself, or given.
        s.Ps.Invoke("Remove-FlightVm macvm -Force");
        var byPath = s.Ps.Invoke("param($p, $seed) Start-FlightVm @p -CloudInit ([string]$seed.Path)", s.GuestParameters("bypath"), seed).Single();
        Assert.Equal(mac, byPath.Properties["MacAddress"].Value);
        s.Ps.Invoke("Remove-FlightVm bypath -Force");
        var given = s.Ps.Invoke("param($p, $seed) Start-FlightVm @p -CloudInit ([string]$seed.Path) -MacAddress $seed.MacAddress.ToUpperInvariant()", s.GuestParameters("given"), seed).Single();
        Assert.Equal(mac, given.Properties["MacAddress"].Value);
        Assert.Equal("VmMacAddressMismatch,VmTools.Commands.StartFlightVmCommand",
            s.ExpectErrorOf("param($p, $seed) Start-FlightVm @p -CloudInit ([string]$seed.Path) -MacAddress 52:54:00:00:00:02", s.GuestParameters("wrong"), seed));
        s.Ps.Invoke("Get-FlightVm | Remove-FlightVm -Force");
    }

    [Fact]
    public void Accelerator_IsChosenByTheCore_RecordedOnTheVm_AndKvmWhereItCannotRunAllocatesNothing()
    {
        using var s = new VmSession();
        var hostKvm = Core.Vms.AcceleratorProbe.Host.Auto.Accelerator == Core.Vms.VmAccelerator.Kvm;
        var vms = Path.Combine(s.Home, "state", "vms");
        if (!hostKvm)
        {
            // This host cannot run a stock guest under KVM (no /dev/kvm, or a PVM one): asking for it fails before anything exists.
            Assert.Equal("VmAcceleratorUnavailable,VmTools.Commands.StartFlightVmCommand", s.ExpectErrorOf("param($p) Start-FlightVm @p -Accelerator Kvm", s.GuestParameters("kvm")));
            Assert.Empty(s.Ps.Invoke("Get-FlightVm"));
            Assert.False(Directory.Exists(vms) && Directory.EnumerateFileSystemEntries(vms).Any(), "a refused -Accelerator Kvm left a VM directory");
        }
        else
        {
            Assert.Equal("Kvm", s.Ps.Invoke("param($p) (Start-FlightVm @p -Accelerator Kvm).Accelerator.ToString()", s.GuestParameters("kvm")).Single().ToString());
        }

        // A CI step's environment setting is honoured and said in -Verbose; Get-FlightVm shows what ran.
        var run = s.Ps.Run("""
            param($p)
            $env:VMTOOLS_ACCELERATOR = 'tcg'
            try { Start-FlightVm @p -Verbose | Out-Null } finally { $env:VMTOOLS_ACCELERATOR = $null }
            (Get-FlightVm tcg).Accelerator.ToString()
            """, s.GuestParameters("tcg"));
        Assert.Empty(run.Errors);
        Assert.Equal("Tcg", run.Output.Single()!.ToString());
        Assert.Contains(run.Verbose, v => v.Contains("VMTOOLS_ACCELERATOR=tcg", StringComparison.Ordinal));
        Assert.Contains(run.Verbose, v => v.Contains("-accel tcg -cpu max", StringComparison.Ordinal));

        Assert.Equal("VmAcceleratorInvalid,VmTools.Commands.StartFlightVmCommand", s.ExpectErrorOf("""
            param($p)
            $env:VMTOOLS_ACCELERATOR = 'warp'
            try { Start-FlightVm @p } finally { $env:VMTOOLS_ACCELERATOR = $null }
            """, s.GuestParameters("warp")));
        Assert.Single(s.Ps.Invoke("Get-FlightVm"), o => o.Properties["Name"].Value.ToString() == "tcg");
        s.Ps.Invoke("Get-FlightVm | Remove-FlightVm -Force");
    }

    /// <summary>
    /// -Network Tap on a bridge VmTools would create needs its DHCP server, dnsmasq. In a step that cannot
    /// find it (a mount namespace hides it from PATH, /usr/sbin and /sbin) the start fails with its own
    /// ErrorId before anything exists: no bridge, no bridge or VM record, nothing under the VM folder.
    /// A bridge the user made needs no DHCP server, so there the same step starts the VM.
    /// </summary>
    [Fact]
    public async Task TapWithoutDnsmasq_OnANewBridge_IsVmDhcpServerUnavailable_AndLeavesNoBridgeRecordOrVmDirectory_OnTheUsersBridge_Starts()
    {
        RealComponent.RequireRoot("tap devices and bridges");
        RealComponent.RequireProgram("ip", "apt-get install iproute2");
        var ct = TestContext.Current.CancellationToken;
        using var s = new VmSession();
        using var hidden = new WithoutProgram("dnsmasq");
        var bridge = "vmtnd" + Guid.NewGuid().ToString("N")[..6];
        var users = "vmtnu" + Guid.NewGuid().ToString("N")[..6];

        async Task<(int ExitCode, string Output, string Error)> StartWithoutDnsmasq(string bridgeName, string vmName)
        {
            using var step = Process.Start(hidden.Wrap(ScriptHostProcess.StartInfo("""
                param($module, $base, $bridge, $name)
                Import-Module $module -ErrorAction Stop
                (Start-FlightVm -ImagePath $base -Name $name -Network Tap -Bridge $bridge -MemoryMB 96).Name
                """, new Dictionary<string, string?> { ["VMTOOLS_HOME"] = s.Home }, PowerShellHost.ModuleManifest, s.BaseImage, bridgeName, vmName)))!;
            var stdout = step.StandardOutput.ReadToEndAsync(ct);
            var stderr = step.StandardError.ReadToEndAsync(ct);
            await step.WaitForExitAsync(ct);
            return (step.ExitCode, await stdout, await stderr);
        }

        try
        {
            var refused = await StartWithoutDnsmasq(bridge, "tapless");
            Assert.True(refused.ExitCode == 1, $"exit {refused.ExitCode}, stderr: {refused.Error}");
            Assert.StartsWith("VmDhcpServerUnavailable,VmTools.Commands.StartFlightVmCommand: ", refused.Error, StringComparison.Ordinal);
            Assert.Contains("apt-get install dnsmasq-base", refused.Error, StringComparison.Ordinal);
            Assert.Equal(string.Empty, refused.Output);

            Assert.False(Directory.Exists("/sys/class/net/" + bridge), $"bridge {bridge} was created");
            Assert.Empty(s.Ps.Invoke("Get-FlightVm"));
            var paths = VmToolsPaths.FromEnvironment(k => k == "VMTOOLS_HOME" ? s.Home : null);
            using (var db = StateDb.Open(paths.DatabasePath)) Assert.Empty(new BridgeStore(db, paths).List());
            Assert.False(Directory.Exists(paths.VmDirectory) && Directory.EnumerateFileSystemEntries(paths.VmDirectory).Any(), "a refused start left a VM directory");
            Assert.False(Directory.Exists(paths.NetworkDirectory) && Directory.EnumerateFileSystemEntries(paths.NetworkDirectory).Any(), "a refused start left a bridge's DHCP folder");
            Assert.Empty(Directory.EnumerateFileSystemEntries("/sys/class/net", VmNaming.TapPrefix(paths) + "*"));
            Assert.DoesNotContain(ProcessTable.Scan().Processes, p => p.CommandLine.Contains("--pid-file=" + s.Home, StringComparison.Ordinal));

            Programs.MustRun("ip", "link", "add", "name", users, "type", "bridge");
            var started = await StartWithoutDnsmasq(users, "onusers");
            Assert.True(started.ExitCode == 0, $"exit {started.ExitCode}, stderr: {started.Error}");
            Assert.Equal("onusers", started.Output.Trim());
            var vm = s.Ps.Invoke("Get-FlightVm onusers").Single();
            Assert.Equal("Running", vm.Properties["State"].Value.ToString());
            Assert.Null(vm.Properties["IPAddress"].Value);
            s.Ps.Invoke("Remove-FlightVm onusers -Force");
            Assert.Empty(Directory.EnumerateFileSystemEntries("/sys/class/net", VmNaming.TapPrefix(paths) + "*"));
        }
        finally
        {
            s.Ps.Invoke("Get-FlightVm | Remove-FlightVm -Force");
            foreach (var b in new[] { bridge, users })
            {
                if (Directory.Exists("/sys/class/net/" + b)) Programs.Run("ip", "link", "del", b);
            }
        }
    }

    [Fact]
    public void BadInput_FailsWithSpecificErrorIds_AndWritesNothing()
    {
        using var s = new VmSession();
        string Fails(string script, params object?[] args) => s.Ps.ExpectError(script, args).FullyQualifiedErrorId;
        Assert.Equal("VmImageNotFound,VmTools.Commands.StartFlightVmCommand", Fails("Start-FlightVm -ImagePath ./nope.qcow2"));
        Assert.Equal("VmCloudInitInvalid,VmTools.Commands.StartFlightVmCommand", Fails("param($b) Start-FlightVm -ImagePath $b -CloudInit ([pscustomobject]@{ Label = 'x' })", s.BaseImage));
        Assert.Equal("VmVolumeInvalid,VmTools.Commands.StartFlightVmCommand", Fails("param($b) Start-FlightVm -ImagePath $b -Volume 42", s.BaseImage));
        Assert.Equal("VmReadyPatternWithoutWait,VmTools.Commands.StartFlightVmCommand", Fails("param($b) Start-FlightVm -ImagePath $b -ReadyPattern x", s.BaseImage));
        Assert.Equal("VmKernelRequired,VmTools.Commands.StartFlightVmCommand", Fails("param($b) Start-FlightVm -ImagePath $b -KernelArgs x", s.BaseImage));
        Assert.Equal("VmDmSnapshotNeedsRaw,VmTools.Commands.StartFlightVmCommand", Fails("param($b) Start-FlightVm -ImagePath $b -DiskMode DmSnapshot", s.BaseImage));
        Assert.Equal("ParameterArgumentValidationError,VmTools.Commands.StartFlightVmCommand", Fails("param($b) Start-FlightVm -ImagePath $b -Name 'bad name'", s.BaseImage));
        Assert.Equal("VmNotFound,VmTools.Commands.StopFlightVmCommand", Fails("Stop-FlightVm ghost"));
        Assert.Equal("VmSshUserInvalid,VmTools.Commands.InvokeFlightVmCommandCommand", Fails("Invoke-FlightVmCommand ghost 'true' -User '-oProxyCommand=touch /tmp/x'"));
        Assert.Equal("VmNotFound,VmTools.Commands.RemoveFlightVmCommand", Fails("Remove-FlightVm ghost"));
        Assert.Equal("VmNotFound,VmTools.Commands.GetVmHandlesCommand", Fails("Get-VmHandles ghost"));
        Assert.Equal("VmNotFound,VmTools.Commands.WaitFlightVmCommand", Fails("Wait-FlightVm ghost -ReadyPattern x"));
        Assert.Equal("VmNotFound,VmTools.Commands.InvokeFlightVmCommandCommand", Fails("Invoke-FlightVmCommand ghost 'true'"));
        Assert.Empty(s.Ps.Invoke("Get-FlightVm"));
        Assert.False(Directory.Exists(Path.Combine(s.Home, "state", "vms")) && Directory.EnumerateFileSystemEntries(Path.Combine(s.Home, "state", "vms")).Any());
    }

    [Fact]
    public void RunningVm_RemoveWithoutForce_IsRefused_WhatIfChangesNothing_AndSshWithoutAServerFails()
    {
        using var s = new VmSession();
        s.Ps.Invoke("param($p, $marker) Start-FlightVm @p -Wait -ReadyPattern $marker -Timeout 120", s.GuestParameters("busy"), FlightVmGuest.ReadyMarker);
        Assert.Equal("VmRunning,VmTools.Commands.RemoveFlightVmCommand", s.ExpectErrorOf("Remove-FlightVm busy"));
        s.Ps.Invoke("Stop-FlightVm busy -WhatIf; Remove-FlightVm busy -Force -WhatIf");
        Assert.True((bool)s.Ps.Invoke("Get-VmHandles busy").Single().Properties["Alive"].Value);

        // The guest has no sshd: the forwarded port accepts and closes, which ssh reports as exit 255.
        if (RealComponent.Which("ssh") is not null)
        {
            Assert.Equal("VmSshFailed,VmTools.Commands.InvokeFlightVmCommandCommand", s.ExpectErrorOf("Invoke-FlightVmCommand busy 'true'"));
        }

        var plan = s.Ps.Invoke("Invoke-VmReconcile -WhatIf");
        var keep = plan.Single(a => (string)a.Properties["Name"].Value == "busy");
        Assert.Equal("Keep", keep.Properties["Action"].Value.ToString());
        Assert.False((bool)keep.Properties["Applied"].Value);
        s.Ps.Invoke("Remove-FlightVm busy -Force");
    }
}
