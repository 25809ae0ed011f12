# User-level cases for the VM cmdlets (Pester 5). Each has a hosted-engine twin in
# tests/VmTools.Tests/Vms/*.cs. Needs qemu-system-x86, a guest kernel and initrd:
#   $env:VMTOOLS_TEST_KERNEL, $env:VMTOOLS_TEST_INITRD (a busybox initrd printing $Marker; see tests/Shared/FlightVmGuest.cs).
BeforeAll {
    Import-Module "$PSScriptRoot/../../out/VmTools/VmTools.psd1" -Force
    $script:Marker = 'FLIGHTVM-GUEST-READY'
    $script:Guest = @{ Kernel = $env:VMTOOLS_TEST_KERNEL; Initrd = $env:VMTOOLS_TEST_INITRD; KernelArgs = 'console=ttyS0 panic=-1 quiet'; MemoryMB = 96 }
}

Describe 'VMs' {
    BeforeEach {
        $env:VMTOOLS_HOME = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-pester-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
        New-Item -ItemType Directory $env:VMTOOLS_HOME | Out-Null
        $script:Base = Join-Path $env:VMTOOLS_HOME 'base.qcow2'
        & qemu-img create -q -f qcow2 $Base 16M
    }
    AfterEach {
        Get-FlightVm | Remove-FlightVm -Force -ErrorAction SilentlyContinue
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME
    }

    # Twin: FlightVmCmdletTests.StartFromACacheEntryLikeObject_WaitsForTheMarker_PipesIntoHandlesStopAndRemove
    It 'starts from a cache entry, waits for the marker, and pipes into handles, stop and remove' {
        $entry = [pscustomobject]@{ Reference = 'r/x:base-qcow2-abc'; Tag = 'base-qcow2-abc'; Digest = 'sha256:00'; Path = $Base; Size = 1; Status = 'Hit'; Source = 'Local' }
        $vm = $entry | Start-FlightVm -Name pipe @Guest -Wait -ReadyPattern $Marker -Timeout 120
        $vm.State | Should -Be 'Running'
        (Get-FlightVm pipe | Get-VmHandles).Alive | Should -BeTrue
        (Get-FlightVm pipe | Stop-FlightVm -Timeout 60 -PassThru).State | Should -Be 'Stopped'
        Get-FlightVm pipe | Remove-FlightVm
        { Get-FlightVm pipe -ErrorAction Stop } | Should -Throw -ErrorId 'VmNotFound,VmTools.Commands.GetFlightVmCommand'
    }

    # Twin: FlightVmCmdletTests.Start_WithCountVolumeAndCloudInitObjects_BindsThemByProperty
    It 'starts a pool with -Count and binds -CloudInit and -Volume objects by property' {
        $iso = Join-Path $env:VMTOOLS_HOME 'seed.iso'; [IO.File]::WriteAllBytes($iso, [byte[]]::new(65536))
        $vol = Join-Path $env:VMTOOLS_HOME 'vol.raw'; [IO.File]::WriteAllBytes($vol, [byte[]]::new(1MB))
        $vms = Start-FlightVm -ImagePath $Base -Name duo -Count 2 @Guest -CloudInit ([pscustomobject]@{ Path = $iso; VolumeLabel = 'cidata' })
        $vms.Name | Should -Be @('duo-1', 'duo-2')
        $vms[0].SshPort | Should -Not -Be $vms[1].SshPort
        (Start-FlightVm -ImagePath $Base -Name vol @Guest -Volume ([pscustomobject]@{ DiskImagePath = $vol })).VolumePaths | Should -Be @($vol)
        { Start-FlightVm -ImagePath $Base -Name clash @Guest -Volume $vol -ErrorAction Stop } | Should -Throw -ErrorId 'VmStartFailed,VmTools.Commands.StartFlightVmCommand'
        (Get-FlightVm clash).State | Should -Be 'Broken'
    }

    # Twin: FlightVmCmdletTests.BadInput_FailsWithSpecificErrorIds_AndWritesNothing
    It 'rejects bad input with specific error ids and writes nothing' -TestCases @(
        @{ Script = { Start-FlightVm -ImagePath ./nope.qcow2 }; Id = 'VmImageNotFound,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -CloudInit ([pscustomobject]@{ Label = 'x' }) }; Id = 'VmCloudInitInvalid,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -Volume 42 }; Id = 'VmVolumeInvalid,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -ReadyPattern x }; Id = 'VmReadyPatternWithoutWait,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -KernelArgs x }; Id = 'VmKernelRequired,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Start-FlightVm -ImagePath $Base -DiskMode DmSnapshot }; Id = 'VmDmSnapshotNeedsRaw,VmTools.Commands.StartFlightVmCommand' }
        @{ Script = { Stop-FlightVm ghost }; Id = 'VmNotFound,VmTools.Commands.StopFlightVmCommand' }
        @{ Script = { Remove-FlightVm ghost }; Id = 'VmNotFound,VmTools.Commands.RemoveFlightVmCommand' }
        @{ Script = { Get-VmHandles ghost }; Id = 'VmNotFound,VmTools.Commands.GetVmHandlesCommand' }
        @{ Script = { Wait-FlightVm ghost -ReadyPattern x }; Id = 'VmNotFound,VmTools.Commands.WaitFlightVmCommand' }
        @{ Script = { Invoke-FlightVmCommand ghost 'true' }; Id = 'VmNotFound,VmTools.Commands.InvokeFlightVmCommandCommand' }
    ) {
        param($Script, $Id)
        { & $Script -ErrorAction Stop } | Should -Throw -ErrorId $Id
        Get-FlightVm | Should -BeNullOrEmpty
    }

    # Twin: FlightVmCmdletTests.RunningVm_RemoveWithoutForce_IsRefused_WhatIfChangesNothing_AndSshWithoutAServerFails
    It 'refuses to remove a running VM, -WhatIf changes nothing, ssh without a server fails' {
        Start-FlightVm -ImagePath $Base -Name busy @Guest -Wait -ReadyPattern $Marker -Timeout 120 | Out-Null
        { Remove-FlightVm busy -ErrorAction Stop } | Should -Throw -ErrorId 'VmRunning,VmTools.Commands.RemoveFlightVmCommand'
        Stop-FlightVm busy -WhatIf; Remove-FlightVm busy -Force -WhatIf
        (Get-VmHandles busy).Alive | Should -BeTrue
        { Invoke-FlightVmCommand busy 'true' -ErrorAction Stop } | Should -Throw -ErrorId 'VmSshFailed,VmTools.Commands.InvokeFlightVmCommandCommand'
        $keep = Invoke-VmReconcile -WhatIf | Where-Object Name -eq busy
        $keep.Action | Should -Be 'Keep'
        $keep.Applied | Should -BeFalse
    }

    # Twin: SurvivesControllerTests.VmStartedByAnotherProcess_SurvivesKill9OfThatProcess_AndANewSessionSeesReconcilesAndStopsIt
    It 'keeps a VM running after its controlling pwsh is killed, and a new session stops it' {
        $module = (Get-Module VmTools).Path -replace 'VmTools.dll$', 'VmTools.psd1'
        $script = "Import-Module '$module'; Start-FlightVm -ImagePath '$Base' -Name orphaned -Kernel '$($Guest.Kernel)' -Initrd '$($Guest.Initrd)' -KernelArgs '$($Guest.KernelArgs)' -MemoryMB 96 | Out-Null; 'STARTED'; Start-Sleep 3600"
        $controller = Start-Process pwsh -ArgumentList '-NoProfile', '-Command', $script -PassThru -RedirectStandardOutput (Join-Path $env:VMTOOLS_HOME 'ctl.out')
        $deadline = (Get-Date).AddSeconds(120)
        while (-not (Select-String -Quiet STARTED (Join-Path $env:VMTOOLS_HOME 'ctl.out') -ErrorAction SilentlyContinue) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        & kill -9 $controller.Id
        (Get-VmHandles orphaned).Alive | Should -BeTrue
        (Invoke-VmReconcile | Where-Object Name -eq orphaned).Action | Should -Be 'Keep'
        (Stop-FlightVm orphaned -Timeout 60 -PassThru).State | Should -Be 'Stopped'
    }
}
