#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# User-level cases for the VM cmdlets in a real pwsh. The guest is the busybox guest of the xunit suites
# (tests/Shared/FlightVmGuest.cs): Debian's kernel, built once per machine, and an initramfs made for this
# file by RealComponents.psm1; it prints FLIGHTVM-GUEST-READY and powers off on the ACPI power button.
# Needs qemu-system-x86 and qemu-utils. The accelerator is the core's own choice (KVM only where it can run
# a stock guest, else TCG). Cases with a hosted-engine twin in tests/VmTools.Tests/Vms name it.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $null = Import-VmToolsUnderTest
    $script:SavedHome = $env:VMTOOLS_HOME
    $script:TestGuest = Get-TestGuest
    $script:Marker = if ($TestGuest.UnavailableReason) { 'unused' } else { $TestGuest.ReadyMarker }
    $script:Guest = if ($TestGuest.UnavailableReason) { @{} } else {
        @{ Kernel = $TestGuest.Kernel; Initrd = $TestGuest.Initrd; KernelArgs = $TestGuest.KernelArgs; MemoryMB = 96 }
    }

    # Another QMP client, not VmTools: greeting, capabilities, then one raw command on the VM's socket.
    function Send-RawQmp([string] $Socket, [string] $Command) {
        $s = [Net.Sockets.Socket]::new([Net.Sockets.AddressFamily]::Unix, [Net.Sockets.SocketType]::Stream, [Net.Sockets.ProtocolType]::Unspecified)
        try {
            $s.ReceiveTimeout = 10000
            $s.Connect([Net.Sockets.UnixDomainSocketEndPoint]::new($Socket))
            $stream = [Net.Sockets.NetworkStream]::new($s)
            $reader = [IO.StreamReader]::new($stream); $writer = [IO.StreamWriter]::new($stream); $writer.AutoFlush = $true
            $reader.ReadLine() | Should -Match '"QMP"'
            foreach ($c in '{"execute":"qmp_capabilities"}', $Command) {
                $writer.WriteLine($c)
                do { $line = $reader.ReadLine() } while ($line -match '"event"')
                $line | Should -Match '"return"'
            }
        } finally { $s.Dispose() }
    }
}

AfterAll {
    $env:VMTOOLS_HOME = $script:SavedHome
    if (-not $TestGuest.UnavailableReason) { Remove-Item -Recurse -Force $TestGuest.Directory -ErrorAction Ignore }
}

Describe 'VMs' {
    BeforeEach {
        $env:VMTOOLS_HOME = New-TestHome
        $script:Base = Join-Path $env:VMTOOLS_HOME 'base.qcow2'
        if (Find-Program qemu-img) { & qemu-img create -q -f qcow2 $Base 16M }
    }
    AfterEach {
        Get-FlightVm | Remove-FlightVm -Force -ErrorAction SilentlyContinue
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME -ErrorAction Ignore
    }

    # Twin: FlightVmCmdletTests.StartFromACacheEntryLikeObject_WaitsForTheMarker_PipesIntoHandlesStopAndRemove
    It 'starts from a cache entry, waits for the marker, and pipes into handles, wait, stop and remove' {
        Assert-RealComponent $TestGuest
        $entry = [pscustomobject]@{ Reference = 'r/x:base-qcow2-abc'; Tag = 'base-qcow2-abc'; Digest = 'sha256:00'; Path = $Base; Size = 1; Status = 'Hit'; Source = 'Local' }
        $vm = $entry | Start-FlightVm -Name pipe @Guest -Wait -ReadyPattern $Marker -Timeout 120
        $vm.State | Should -Be 'Running'
        Get-Content -Raw $vm.ConsoleLogPath | Should -Match $Marker
        (Get-FlightVm pipe | Get-VmHandles).Alive | Should -BeTrue
        (Get-FlightVm pipe | Wait-FlightVm -ReadyPattern $Marker -Timeout 30).Name | Should -Be 'pipe'
        (Get-FlightVm pipe | Stop-FlightVm -Timeout 60 -PassThru).State | Should -Be 'Stopped'
        Get-Content -Raw $vm.ConsoleLogPath | Should -Match 'POWER-BUTTON' -Because 'a stop without -Force is a graceful powerdown'
        Get-FlightVm pipe | Remove-FlightVm
        { Get-FlightVm pipe -ErrorAction Stop } | Should -Throw -ErrorId 'VmNotFound,VmTools.Commands.GetFlightVmCommand'
    }

    # Twin: FlightVmCmdletTests.Start_WithCountVolumeAndCloudInitObjects_BindsThemByProperty
    It 'starts a pool with -Count and binds -CloudInit and -Volume objects by property' {
        Assert-RealComponent $TestGuest
        $iso = Join-Path $env:VMTOOLS_HOME 'seed.iso'; [IO.File]::WriteAllBytes($iso, [byte[]]::new(65536))
        $vol = Join-Path $env:VMTOOLS_HOME 'vol.raw'; [IO.File]::WriteAllBytes($vol, [byte[]]::new(1MB))
        $vms = Start-FlightVm -ImagePath $Base -Name duo -Count 2 @Guest -CloudInit ([pscustomobject]@{ Path = $iso; VolumeLabel = 'cidata' })
        $vms.Name | Should -Be @('duo-1', 'duo-2')
        $vms[0].SshPort | Should -Not -Be $vms[1].SshPort
        (Start-FlightVm -ImagePath $Base -Name vol @Guest -Volume ([pscustomobject]@{ DiskImagePath = $vol })).VolumePaths | Should -Be @($vol)
        { Start-FlightVm -ImagePath $Base -Name clash @Guest -Volume $vol -ErrorAction Stop } | Should -Throw -ErrorId 'VmStartFailed,VmTools.Commands.StartFlightVmCommand'
        (Get-FlightVm clash).State | Should -Be 'Broken'
    }

    It 'gives the NIC the MAC of the seed New-CloudInitIso wrote, and refuses the seed again while its VM exists' {
        Assert-RealComponent $TestGuest
        $seed = New-CloudInitConfig -Hostname seeded | New-CloudInitIso -Path (Join-Path $env:VMTOOLS_HOME 'seeded.iso')
        $vm = Start-FlightVm -ImagePath $Base -Name seeded @Guest -CloudInit $seed
        $vm.MacAddress | Should -Be $seed.MacAddress
        { Start-FlightVm -ImagePath $Base -Name again @Guest -CloudInit $seed -ErrorAction Stop } | Should -Throw -ErrorId 'VmMacAddressInUse,VmTools.Commands.StartFlightVmCommand'
    }

    # Twin: FlightVmCmdletTests.BadInput_FailsWithSpecificErrorIds_AndWritesNothing
    # Each script carries its own -ErrorAction Stop: a parameter given to `& $Script` would bind to nothing.
    It 'rejects <Id> and writes nothing' -TestCases @(
        @{ Script = { Start-FlightVm -ImagePath ./nope.qcow2 -ErrorAction Stop }; Id = 'VmImageNotFound,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -CloudInit ([pscustomobject]@{ Label = 'x' }) -ErrorAction Stop }; Id = 'VmCloudInitInvalid,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -Volume 42 -ErrorAction Stop }; Id = 'VmVolumeInvalid,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -ReadyPattern x -ErrorAction Stop }; Id = 'VmReadyPatternWithoutWait,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -KernelArgs x -ErrorAction Stop }; Id = 'VmKernelRequired,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -DiskMode DmSnapshot -ErrorAction Stop }; Id = 'VmDmSnapshotNeedsRaw,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Stop-FlightVm ghost -ErrorAction Stop }; Id = 'VmNotFound,VmTools.Commands.StopFlightVmCommand' }
        @{ Script = { Remove-FlightVm ghost -ErrorAction Stop }; Id = 'VmNotFound,VmTools.Commands.RemoveFlightVmCommand' }
        @{ Script = { Get-VmHandles ghost -ErrorAction Stop }; Id = 'VmNotFound,VmTools.Commands.GetVmHandlesCommand' }
        @{ Script = { Wait-FlightVm ghost -ReadyPattern x -ErrorAction Stop }; Id = 'VmNotFound,VmTools.Commands.WaitFlightVmCommand' }
        @{ Script = { Invoke-FlightVmCommand ghost 'true' -ErrorAction Stop }; Id = 'VmNotFound,VmTools.Commands.InvokeFlightVmCommandCommand' }
    ) {
        param($Script, $Id)
        $Script | Should -Throw -ErrorId $Id
        Get-FlightVm | Should -BeNullOrEmpty
    }

    # Twin: FlightVmCmdletTests.RunningVm_RemoveWithoutForce_IsRefused_WhatIfChangesNothing_AndSshWithoutAServerFails
    It 'refuses to remove a running VM, -WhatIf changes nothing, ssh without a server fails' {
        Assert-RealComponent $TestGuest
        Start-FlightVm -ImagePath $Base -Name busy @Guest -Wait -ReadyPattern $Marker -Timeout 120 | Out-Null
        { Remove-FlightVm busy -ErrorAction Stop } | Should -Throw -ErrorId 'VmRunning,VmTools.Commands.RemoveFlightVmCommand'
        Stop-FlightVm busy -WhatIf; Remove-FlightVm busy -Force -WhatIf
        (Get-VmHandles busy).Alive | Should -BeTrue
        { Invoke-FlightVmCommand busy 'true' -ErrorAction Stop } | Should -Throw -ErrorId 'VmSshFailed,VmTools.Commands.InvokeFlightVmCommandCommand'
        $keep = Invoke-VmReconcile -WhatIf | Where-Object Name -eq busy
        $keep.Action | Should -Be 'Keep'
        $keep.Applied | Should -BeFalse
    }

    # Twin: ConsoleAndNamePatternCmdletTests.WildcardNames_SelectTheMatchingVms_APatternMatchingNoneIsSilent_ALiteralIsVmNotFound_AndTheConsoleFollowsUntilAMatch
    It 'follows the console until a line matches, takes wildcard names, and removes with -PassThru' {
        Assert-RealComponent $TestGuest
        Start-FlightVm -ImagePath $Base -Name ci @Guest -Count 2 | Out-Null
        $lines = @(Get-FlightVmConsole ci-1 -Until $Marker -Timeout 120)
        $lines | Should -BeOfType [string]
        $lines[-1] | Should -Match $Marker
        (Get-FlightVm ci-* | Wait-FlightVm -ReadyPattern $Marker -Timeout 120).Name | Should -Be @('ci-1', 'ci-2')
        Get-FlightVm nomatch-* | Should -BeNullOrEmpty
        { Stop-FlightVm nosuch -ErrorAction Stop } | Should -Throw -ErrorId 'VmNotFound,VmTools.Commands.StopFlightVmCommand'
        (Stop-FlightVm ci-* -Timeout 60 -PassThru).State | Should -Be @('Stopped', 'Stopped')
        Get-FlightVmConsole ci-2 -Wait | Should -Contain 'POWER-BUTTON' -Because 'a stopped VM keeps its console, and following it ends since qemu is gone'
        { Get-FlightVmConsole ci-2 -Until never-printed -ErrorAction Stop } | Should -Throw -ErrorId 'VmConsoleUntilNotSeen,VmTools.Commands.GetFlightVmConsoleCommand'
        (Remove-FlightVm ci-* -PassThru).Name | Should -Be @('ci-1', 'ci-2')
        Get-FlightVm | Should -BeNullOrEmpty
    }

    # Twin: RunControlCmdletTests.SuspendResumeRestart_ChangeTheRecordedState_WhatIfChangesNothing_AndAStoppedVmIsVmNotRunning
    It 'suspends, resumes and restarts a VM, and reconcile records Paused or Running as qemu says, however it was paused' {
        Assert-RealComponent $TestGuest
        Start-FlightVm -ImagePath $Base -Name rc @Guest -Wait -ReadyPattern $Marker -Timeout 120 | Out-Null
        Suspend-FlightVm rc -WhatIf
        (Get-FlightVm rc).State | Should -Be 'Running'
        (Suspend-FlightVm rc -PassThru).State | Should -Be 'Paused'
        (Invoke-VmReconcile | Where-Object Name -eq rc).StateAfter | Should -Be 'Paused'
        (Get-FlightVm -State Paused | Resume-FlightVm -PassThru).State | Should -Be 'Running'
        # Paused and resumed behind VmTools' back: reconcile records what qemu says, and the views still format.
        Send-RawQmp (Get-FlightVm rc).QmpSocketPath '{"execute":"stop"}'
        (Invoke-VmReconcile | Where-Object Name -eq rc).StateAfter | Should -Be 'Paused'
        (Get-FlightVm rc | Out-String) | Should -Match 'rc\s+Paused'
        (Get-VmHandles rc | Out-String) | Should -Match 'rc'
        Send-RawQmp (Get-FlightVm rc).QmpSocketPath '{"execute":"cont"}'
        (Invoke-VmReconcile | Where-Object Name -eq rc).StateAfter | Should -Be 'Running'
        (Get-FlightVm rc).State | Should -Be 'Running'
        (Restart-FlightVm rc -PassThru).State | Should -Be 'Running'
        $deadline = (Get-Date).AddSeconds(120)
        while (@(Get-FlightVmConsole rc | Select-String $Marker).Count -lt 2 -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        @(Get-FlightVmConsole rc | Select-String $Marker).Count | Should -Be 2 -Because 'the reset guest boots again'
        Stop-FlightVm rc -Force
        { Resume-FlightVm rc -ErrorAction Stop } | Should -Throw -ErrorId 'VmNotRunning,VmTools.Commands.ResumeFlightVmCommand'
    }

    It 'tears down a VM whose qemu died, keeping its record as Stopped' {
        Assert-RealComponent $TestGuest
        Start-FlightVm -ImagePath $Base -Name crashed @Guest -Wait -ReadyPattern $Marker -Timeout 120 | Out-Null
        $qemu = (Get-VmHandles crashed).Pid
        & kill -9 $qemu
        $null = 1..50 | ForEach-Object { if (Test-Path "/proc/$qemu") { Start-Sleep -Milliseconds 100 } }
        (Get-VmHandles crashed).Alive | Should -BeFalse
        $plan = Invoke-VmReconcile -WhatIf | Where-Object Name -eq crashed
        $plan.Action | Should -Be 'TearDown'
        $plan.Applied | Should -BeFalse
        $done = Invoke-VmReconcile | Where-Object Name -eq crashed
        $done.Applied | Should -BeTrue
        (Get-FlightVm crashed).State | Should -Be 'Stopped'
    }

    # Twin: TapNetworkTests.TapPool_OfThreeOnOneBridge_EachGetsItsReservedAddress_SshAndCopyWork_ThenAfterKill9_ReconcileRemovesTapsDhcpServerAndBridge
    It 'gives a tap pool on a VmTools bridge the addresses reserved before boot, reaches all three over SSH from one pipeline, copies a file byte-identical, and reconcile takes the bridge down after kill -9' {
        $tap = Get-TapNetworking
        $sshGuest = Get-TestGuest -Ssh
        Assert-RealComponent $sshGuest $tap
        $key = @{ KeyPath = $sshGuest.KeyPath; User = $sshGuest.User }
        try {
            $vms = Start-FlightVm -ImagePath $Base -Name tp -Count 3 -Network Tap -Bridge $tap.Bridge -Kernel $sshGuest.Kernel -Initrd $sshGuest.Initrd -KernelArgs $sshGuest.KernelArgs -MemoryMB 256
            $vms.IPAddress | Select-Object -Unique | Should -HaveCount 3 -Because 'each VM reserves its own address with its record'
            (Get-FlightVm tp-*).IPAddress | Should -Be $vms.IPAddress
            foreach ($vm in $vms) {
                # Per VM: the guest's DHCP client got exactly the reserved address.
                Wait-FlightVm $vm.Name -ReadyPattern $sshGuest.ReadyMarker -Timeout 240 | Out-Null
                $leased = @(Get-Content $vm.ConsoleLogPath | Select-String 'GUEST-IP (\S+)' | ForEach-Object { $_.Matches[0].Groups[1].Value })
                $leased | Should -Be @($vm.IPAddress)
            }

            # One pipeline, three VMs at once, each reached over SSH at its reserved address.
            $answers = Get-FlightVm tp-* | Invoke-FlightVmCommand -Command 'cat /sys/class/net/eth0/address' @key -ThrottleLimit 3
            $answers | Should -HaveCount 3
            $answers | ForEach-Object { $_.ExitCode | Should -Be 0 }
            ($answers | Sort-Object Name | ForEach-Object { $_.Output.Trim() }) | Should -Be ($vms | Sort-Object Name).MacAddress

            # A file to one guest and back, byte-identical.
            $sent = Join-Path $env:VMTOOLS_HOME 'payload.bin'
            [IO.File]::WriteAllBytes($sent, [Security.Cryptography.RandomNumberGenerator]::GetBytes(2MB + 5))
            $back = Join-Path $env:VMTOOLS_HOME 'payload.back'
            Copy-FlightVmItem tp-2 -Path $sent -Destination /tmp/payload.bin @key
            Copy-FlightVmItem tp-2 -Path /tmp/payload.bin -Destination $back -FromGuest @key
            (Get-FileHash $back).Hash | Should -Be (Get-FileHash $sent).Hash

            $handles = Get-VmHandles tp-*
            $handles.IPAddress | Should -Be $vms.IPAddress
            $dhcp = $handles[0].DhcpServerPid
            $dhcp | Should -BeGreaterThan 0
            foreach ($h in $handles) { & kill -9 $h.Pid }
            $null = 1..100 | ForEach-Object { if ($handles | Where-Object { Test-Path "/proc/$($_.Pid)" }) { Start-Sleep -Milliseconds 100 } }

            $done = Invoke-VmReconcile
            @($done | Where-Object { $_.Action -eq 'TearDown' -and $_.Applied }).Name | Sort-Object | Should -Be @('tp-1', 'tp-2', 'tp-3')
            @($done | Where-Object { $_.Action -eq 'StopDhcpServer' -and $_.Applied }).Name | Should -Be @($tap.Bridge)
            @($done | Where-Object { $_.Action -eq 'RemoveBridge' -and $_.Applied }).Name | Should -Be @($tap.Bridge)
            Test-Path "/sys/class/net/$($tap.Bridge)" | Should -BeFalse
            foreach ($vm in $vms) { Test-Path "/sys/class/net/$($vm.TapName)" | Should -BeFalse }
            (Get-Content "/proc/$dhcp/stat" -ErrorAction Ignore) -replace '^.*\) (\S).*$', '$1' | Should -BeIn @('', 'Z') -Because 'the DHCP server is stopped (a zombie not yet reaped is gone too)'
            (Get-FlightVm tp-*).State | Should -Be @('Stopped', 'Stopped', 'Stopped')
        }
        finally {
            Get-FlightVm | Remove-FlightVm -Force -ErrorAction SilentlyContinue
            Invoke-VmReconcile -ErrorAction SilentlyContinue | Out-Null
            if ($tap.Bridge -and (Test-Path "/sys/class/net/$($tap.Bridge)")) { & ip link del $tap.Bridge }
            if ($sshGuest.Directory) { Remove-Item -Recurse -Force $sshGuest.Directory -ErrorAction Ignore }
        }
    }

    # Twin: FlightVmCmdletTests.TapWithoutDnsmasq_OnANewBridge_IsVmDhcpServerUnavailable_AndLeavesNoBridgeRecordOrVmDirectory_OnTheUsersBridge_Starts
    It 'refuses -Network Tap on a new bridge with VmDhcpServerUnavailable in a step that cannot find dnsmasq, leaving no bridge, VM or DHCP folder' {
        $tap = Get-TapNetworking
        Assert-RealComponent $tap
        $bridge = $tap.Bridge
        try {
            # A CI step without dnsmasq: a private mount namespace hides it from PATH, /usr/sbin and /sbin.
            $r = Invoke-Pwsh -WithoutProgram dnsmasq -Environment @{ VMTOOLS_HOME = $env:VMTOOLS_HOME } -Command @"
try { Start-FlightVm -ImagePath '$Base' -Name tapless -Network Tap -Bridge $bridge -MemoryMB 96 -ErrorAction Stop; 'started' }
catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message; exit 1 }
"@
            $r.ExitCode | Should -Be 1 -Because "stdout: $($r.Output) stderr: $($r.Error)"
            $r.Output[0] | Should -Be 'VmDhcpServerUnavailable,VmTools.Commands.StartFlightVmCommand'
            $r.Output[1] | Should -BeLike '*apt-get install dnsmasq-base*'

            Test-Path "/sys/class/net/$bridge" | Should -BeFalse -Because 'nothing is made before the check'
            Get-FlightVm | Should -BeNullOrEmpty
            @(Get-ChildItem -Force (Join-Path $env:VMTOOLS_HOME 'state/vms') -ErrorAction Ignore).Count | Should -Be 0
            @(Get-ChildItem -Force (Join-Path $env:VMTOOLS_HOME 'state/net') -ErrorAction Ignore).Count | Should -Be 0
            @(Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$' |
                Where-Object { (Get-Content -Raw "$($_.FullName)/cmdline" -ErrorAction Ignore) -like "*--pid-file=$env:VMTOOLS_HOME*" }).Count | Should -Be 0
        }
        finally {
            Get-FlightVm | Remove-FlightVm -Force -ErrorAction SilentlyContinue
            if (Test-Path "/sys/class/net/$bridge") { & ip link del $bridge }
        }
    }

    # Twin: SurvivesControllerTests.VmStartedByAnotherProcess_SurvivesKill9OfThatProcess_AndANewSessionSeesReconcilesAndStopsIt
    It 'keeps a VM running after its controlling pwsh is killed, and a new session stops it' {
        Assert-RealComponent $TestGuest
        $module = Join-Path $PSScriptRoot '../../out/VmTools/VmTools.psd1'
        $started = Join-Path $env:VMTOOLS_HOME 'controller.started'
        $script = "Import-Module '$module'; Start-FlightVm -ImagePath '$Base' -Name orphaned -Kernel '$($Guest.Kernel)' -Initrd '$($Guest.Initrd)' -KernelArgs '$($Guest.KernelArgs)' -MemoryMB 96 | Out-Null; Set-Content '$started' STARTED; Start-Sleep 3600"
        $pwsh = Get-PwshCommandLine
        $psi = [Diagnostics.ProcessStartInfo]::new($pwsh[0])
        foreach ($a in @($pwsh | Select-Object -Skip 1) + '-NoProfile', '-NonInteractive', '-Command', $script) { $psi.ArgumentList.Add($a) }
        $psi.Environment['VMTOOLS_HOME'] = $env:VMTOOLS_HOME
        $controller = [Diagnostics.Process]::Start($psi)
        $deadline = (Get-Date).AddSeconds(120)
        while (-not (Test-Path $started) -and -not $controller.HasExited -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        $started | Should -Exist -Because 'the controlling pwsh started the VM'
        & kill -9 $controller.Id
        (Get-VmHandles orphaned).Alive | Should -BeTrue
        (Invoke-VmReconcile | Where-Object Name -eq orphaned).Action | Should -Be 'Keep'
        (Stop-FlightVm orphaned -Timeout 60 -PassThru).State | Should -Be 'Stopped'
    }

    It 'lets a later one-shot pwsh step see and stop the VM an earlier step started' {
        Assert-RealComponent $TestGuest
        $start = Invoke-Pwsh "Start-FlightVm -ImagePath '$Base' -Name stepped -Kernel '$($Guest.Kernel)' -Initrd '$($Guest.Initrd)' -KernelArgs '$($Guest.KernelArgs)' -MemoryMB 96 -Wait -ReadyPattern '$Marker' -Timeout 120 | Out-Null; (Get-VmHandles stepped).Alive" -Environment @{ VMTOOLS_HOME = $env:VMTOOLS_HOME }
        $start.ExitCode | Should -Be 0 -Because $start.Error
        $start.Output | Should -Be 'True'
        $stop = Invoke-Pwsh "(Stop-FlightVm stepped -Timeout 60 -PassThru).State" -Environment @{ VMTOOLS_HOME = $env:VMTOOLS_HOME }
        $stop.Output | Should -Be 'Stopped'
    }
}

# The SSH test guest (tests/Shared/SshGuest.cs's layout, built by Get-TestGuest -Ssh): two VMs booted once for
# these cases, reached over qemu's user network as Invoke-FlightVmCommand and Copy-FlightVmItem reach any VM.
# Twin: VmSshGuestTests (core) for the command, the timeout and the copy.
Describe 'VMs over SSH' {
    BeforeAll {
        $script:SshGuest = Get-TestGuest -Ssh
        $env:VMTOOLS_HOME = New-TestHome
        $script:SshBase = Join-Path $env:VMTOOLS_HOME 'base.qcow2'
        if (-not $SshGuest.UnavailableReason) {
            & qemu-img create -q -f qcow2 $SshBase 16M
            $script:Key = @{ KeyPath = $SshGuest.KeyPath; User = $SshGuest.User }
            # The console marker, not the SSH banner: under TCG sshd answers slowly, and banner probes pile up.
            $script:Pool = Start-FlightVm -ImagePath $SshBase -Name ci -Count 2 -Kernel $SshGuest.Kernel -Initrd $SshGuest.Initrd -KernelArgs $SshGuest.KernelArgs -MemoryMB 256 -Network User -Wait -ReadyPattern $SshGuest.ReadyMarker -Timeout 300
        }
    }
    AfterAll {
        Get-FlightVm | Remove-FlightVm -Force -ErrorAction SilentlyContinue
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME -ErrorAction Ignore
        if (-not $SshGuest.UnavailableReason) { Remove-Item -Recurse -Force $SshGuest.Directory -ErrorAction Ignore }
    }

    It 'runs a command in every VM of the pipeline at once, writes each result as it completes, and a missing VM is one error' {
        Assert-RealComponent $SshGuest
        # Position 0 is -Name (Invoke-FlightVmCommand ci 'uname -a'), so with VMs from the pipeline the command is named.
        $all = @(Get-FlightVm ci-* | Invoke-FlightVmCommand -Command 'uname -s' -ThrottleLimit 4 @Key)
        $all.Name | Sort-Object | Should -Be @('ci-1', 'ci-2')
        $all.ExitCode | Should -Be @(0, 0)
        $all.Output | Should -Be @("Linux`n", "Linux`n")
        # ci-1 alone takes 30 s longer: run at once, ci-2's result comes first although ci-1 was piped first.
        $flag = Join-Path $env:VMTOOLS_HOME 'slow'; Set-Content $flag slow
        Copy-FlightVmItem ci-1 -Path $flag -Destination /tmp/slow @Key
        $results = @('ci-1', 'ghost', 'ci-2' | Invoke-FlightVmCommand -Command 'if [ -e /tmp/slow ]; then sleep 30; fi; echo done' -ThrottleLimit 4 @Key -ErrorVariable failed -ErrorAction SilentlyContinue)
        $results.Name | Should -Be @('ci-2', 'ci-1')
        $results.Output | Should -Be @("done`n", "done`n")
        $failed.FullyQualifiedErrorId | Should -Be @('VmNotFound,VmTools.Commands.InvokeFlightVmCommandCommand')
    }

    It 'ends a command at -Timeout with VmCommandTimeout, and the command is gone from the guest' {
        Assert-RealComponent $SshGuest
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $record = $null
        try { Invoke-FlightVmCommand ci-1 'sleep 600' -Timeout 3 @Key -ErrorAction Stop } catch { $record = $_ }
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 20
        $record.FullyQualifiedErrorId | Should -Be 'VmCommandTimeout,VmTools.Commands.InvokeFlightVmCommandCommand'
        $record.CategoryInfo.Category | Should -Be 'OperationTimeout'
        $ps = $null
        foreach ($try in 1..20) {
            $ps = Invoke-FlightVmCommand ci-1 'ps' @Key
            if ($ps.Output -notmatch 'sleep 600') { break }
            Start-Sleep -Milliseconds 250
        }
        $ps.Output | Should -Match 'sshd' -Because 'ps lists the guest''s processes'
        $ps.Output | Should -Not -Match 'sleep 600'
    }

    It 'copies a 5 MB random file into the guest and back byte for byte, and a folder with -Recurse' {
        Assert-RealComponent $SshGuest
        $sent = Join-Path $env:VMTOOLS_HOME 'random.bin'
        [IO.File]::WriteAllBytes($sent, [Security.Cryptography.RandomNumberGenerator]::GetBytes(5MB))
        Copy-FlightVmItem ci-1 -Path $sent -Destination /tmp/random.bin @Key -WhatIf
        (Invoke-FlightVmCommand ci-1 'test -e /tmp/random.bin' @Key).ExitCode | Should -Be 1 -Because '-WhatIf copies nothing'
        $up = Copy-FlightVmItem ci-1 $sent /tmp/random.bin @Key -PassThru
        $up.Length | Should -Be 5MB
        $up.FromGuest | Should -BeFalse
        $back = Join-Path $env:VMTOOLS_HOME 'back'
        $null = New-Item -ItemType Directory $back
        $down = Get-FlightVm ci-1 | Copy-FlightVmItem -Path /tmp/random.bin -Destination $back -FromGuest @Key -PassThru
        $down.Length | Should -Be 5MB
        (Get-FileHash (Join-Path $back 'random.bin')).Hash | Should -Be (Get-FileHash $sent).Hash
        ($down | Format-Table | Out-String) | Should -Match 'FromGuest'

        $tree = Join-Path $env:VMTOOLS_HOME 'tree'
        $null = New-Item -ItemType Directory (Join-Path $tree 'sub')
        Set-Content (Join-Path $tree 'sub/leaf.txt') leaf
        Copy-FlightVmItem ci-1 $tree /tmp/ -Recurse @Key
        (Invoke-FlightVmCommand ci-1 'cat /tmp/tree/sub/leaf.txt' @Key).Output | Should -Be "leaf`n"
    }

    It 'ends a copy at -Timeout with VmCopyTimeout and kills scp; a copy out of the guest leaves no file behind' {
        Assert-RealComponent $SshGuest
        { Copy-FlightVmItem ci-1 -Path /etc/hostname -Destination ./h -FromGuest -Timeout 0 @Key -ErrorAction Stop } | Should -Throw -ErrorId 'ParameterArgumentValidationError,VmTools.Commands.CopyFlightVmItemCommand'
        $port = "Port=$((Get-FlightVm ci-1).SshPort)"
        $copyProcesses = { @(Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$' | ForEach-Object {
            $argv = (Get-Content -Raw "$($_.FullName)/cmdline" -ErrorAction Ignore) -split "`0"
            if ($argv -and (Split-Path -Leaf $argv[0]) -in 'scp', 'ssh' -and $argv -contains $port) { $argv -join ' ' } }) }

        # A FIFO in the guest that nobody reads: sftp-server blocks opening it for writing, so the copy in hangs.
        $null = Invoke-FlightVmCommand ci-1 'rm -f /tmp/fifo; mkfifo /tmp/fifo' @Key
        $small = Join-Path $env:VMTOOLS_HOME 'small.txt'; Set-Content $small small
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $record = $null
        try { Copy-FlightVmItem ci-1 $small /tmp/fifo -Timeout 3 @Key -ErrorAction Stop } catch { $record = $_ }
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 20
        $record.FullyQualifiedErrorId | Should -Be 'VmCopyTimeout,VmTools.Commands.CopyFlightVmItemCommand'
        $record.CategoryInfo.Category | Should -Be 'OperationTimeout'
        $record.Exception.Message | Should -BeLike '*may be partial*'
        $null = 1..20 | ForEach-Object { if ((& $copyProcesses).Count) { Start-Sleep -Milliseconds 100 } }
        & $copyProcesses | Should -BeNullOrEmpty -Because 'scp and its ssh were killed'

        # Out of the guest, 64 MiB over SSH under TCG within one second: cut short, and the host folder stays empty.
        $null = Invoke-FlightVmCommand ci-1 'dd if=/dev/zero of=/tmp/big.bin bs=1048576 count=64 2>/dev/null' @Key
        $into = Join-Path $env:VMTOOLS_HOME 'timeout-into'
        $null = New-Item -ItemType Directory $into
        { Copy-FlightVmItem ci-1 -Path /tmp/big.bin -Destination $into -FromGuest -Timeout 1 @Key -ErrorAction Stop } | Should -Throw -ErrorId 'VmCopyTimeout,VmTools.Commands.CopyFlightVmItemCommand'
        Get-ChildItem -Force $into | Should -BeNullOrEmpty
        $null = Invoke-FlightVmCommand ci-1 'rm -f /tmp/big.bin /tmp/fifo' @Key
    }

    It 'fails with VmCopyFailed or VmSshFailed naming the guest''s or ssh''s reason, without retrying what got past the handshake' {
        Assert-RealComponent $SshGuest
        $into = Join-Path $env:VMTOOLS_HOME 'failed-into'
        $null = New-Item -ItemType Directory $into
        $record = $null
        try { Copy-FlightVmItem ci-1 -Path /no/such/file -Destination $into -FromGuest @Key -ErrorAction Stop } catch { $record = $_ }
        $record.FullyQualifiedErrorId | Should -Be 'VmCopyFailed,VmTools.Commands.CopyFlightVmItemCommand'
        $record.Exception.Message | Should -BeLike '*/no/such/file*No such file*'
        $record.Exception.Message | Should -Not -BeLike '*attempts*' -Because 'the guest answered: nothing to try again'
        Get-ChildItem -Force $into | Should -BeNullOrEmpty -Because 'nothing staged is left behind'

        $small = Join-Path $env:VMTOOLS_HOME 'to-nowhere.txt'; Set-Content $small x
        { Copy-FlightVmItem ci-1 -Path $small -Destination /no/such/dir/x @Key -ErrorAction Stop } | Should -Throw -ErrorId 'VmCopyFailed,VmTools.Commands.CopyFlightVmItemCommand'

        # A key the guest does not accept: ssh's own reason, said once.
        $stranger = Join-Path $env:VMTOOLS_HOME 'stranger_ed25519'
        & ssh-keygen -q -t ed25519 -N '' -f $stranger
        $record = $null
        try { Invoke-FlightVmCommand ci-1 'true' -KeyPath $stranger -User $SshGuest.User -ErrorAction Stop } catch { $record = $_ }
        $record.FullyQualifiedErrorId | Should -Be 'VmSshFailed,VmTools.Commands.InvokeFlightVmCommandCommand'
        $record.CategoryInfo.Category | Should -Be 'ConnectionError'
        $record.Exception.Message | Should -BeLike '*Permission denied*'
        $record.Exception.Message | Should -Not -BeLike '*attempts*'
    }

    It 'rejects <Id> before connecting' -TestCases @(
        @{ Script = { Copy-FlightVmItem ghost -Path ./x -Destination /tmp/x -ErrorAction Stop }; Id = 'VmNotFound,VmTools.Commands.CopyFlightVmItemCommand' }
        @{ Script = { Copy-FlightVmItem ci-1 -Path '-oProxyCommand=x' -Destination /tmp/x -ErrorAction Stop }; Id = 'VmCopyPathInvalid,VmTools.Commands.CopyFlightVmItemCommand' }
        @{ Script = { Copy-FlightVmItem ci-1 -Path ./missing -Destination /tmp/x -ErrorAction Stop }; Id = 'VmCopySourceNotFound,VmTools.Commands.CopyFlightVmItemCommand' }
        @{ Script = { Copy-FlightVmItem ci-1 -Path $env:VMTOOLS_HOME -Destination /tmp/x -ErrorAction Stop }; Id = 'VmCopyNeedsRecurse,VmTools.Commands.CopyFlightVmItemCommand' }
        @{ Script = { Copy-FlightVmItem ci-1 -Path /etc/hostname -Destination ./no/such/h -FromGuest -ErrorAction Stop }; Id = 'VmCopyDestinationNotFound,VmTools.Commands.CopyFlightVmItemCommand' }
        @{ Script = { Copy-FlightVmItem ci-* -Path /etc/hostname -Destination ./h -FromGuest -ErrorAction Stop }; Id = 'VmCopyFromGuestNeedsOneVm,VmTools.Commands.CopyFlightVmItemCommand' }
        @{ Script = { Copy-FlightVmItem ci-1 -Path ./x -Destination /tmp/x -KeyPath ./nokey -ErrorAction Stop }; Id = 'VmSshKeyNotFound,VmTools.Commands.CopyFlightVmItemCommand' }
    ) {
        param($Script, $Id)
        Assert-RealComponent $SshGuest
        $Script | Should -Throw -ErrorId $Id
    }

    It 'refuses a stopped VM with VmNotRunning, for commands and copies' {
        Assert-RealComponent $SshGuest
        Stop-FlightVm ci-2 -Force
        { Invoke-FlightVmCommand ci-2 'true' @Key -ErrorAction Stop } | Should -Throw -ErrorId 'VmNotRunning,VmTools.Commands.InvokeFlightVmCommandCommand'
        { Copy-FlightVmItem ci-2 -Path /etc/hostname -Destination /tmp/h @Key -ErrorAction Stop } | Should -Throw -ErrorId 'VmNotRunning,VmTools.Commands.CopyFlightVmItemCommand'
    }
}
