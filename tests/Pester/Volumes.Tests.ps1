#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# User-level cases for the VmVolume cmdlets in a real pwsh. Needs root and zfs-fuse: this file joins the
# machine's shared zfs-fuse daemon (RealComponents.psm1, the protocol of tests/Shared/ZfsFuseDaemon.cs).
# Each pool is a fresh `vmtt…` pool on a sparse file vdev. Hosted twins: tests/VmTools.Tests/Volumes/VolumeCmdletTests.cs.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $null = Import-VmToolsUnderTest
    $script:Zfs = Enter-ZfsFuse
    $script:SavedHome = $env:VMTOOLS_HOME
}
AfterAll {
    Exit-ZfsFuse $script:Zfs
    $env:VMTOOLS_HOME = $script:SavedHome
}

Describe 'VmVolume cmdlets' {
    BeforeEach {
        $script:StateHome = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-pester-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
        New-Item -ItemType Directory -Path $script:StateHome | Out-Null
        $env:VMTOOLS_HOME = $script:StateHome
        $script:pool = New-TestPoolName
        $script:vdev = Join-Path $script:StateHome "vdev/$($script:pool).vdev"
    }
    AfterEach {
        if (-not $Zfs.UnavailableReason) { Remove-TestPool $script:pool }
        Remove-Item -Recurse -Force $script:StateHome -ErrorAction SilentlyContinue
    }

    Context 'with a pool' {
        BeforeEach {
            if ($Zfs.UnavailableReason) { return }
            Initialize-VmVolumePool -PoolName $script:pool -VdevPath $script:vdev -Size 512MB -WorkingDirectory (Join-Path $script:StateHome 'zfs') | Out-Null
        }

        It 'carries files through New-VmVolume | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -Path | Receive-VmVolumeSnapshot' {
            Assert-RealComponent $Zfs
            $src = New-VmVolume -Name src -Metadata @{ job = 'build' }
            Set-Content -Path (Join-Path $src.Mountpoint 'alpha') -Value 'data' -NoNewline
            New-VmVolume -Name dst | Out-Null
            $received = $src | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -Path (Join-Path $script:StateHome 's.zstream') | Receive-VmVolumeSnapshot -VolumeId dst
            $received.IsSnapshot | Should -BeTrue
            Get-Content -Raw (Join-Path (Get-VmVolume dst).Mountpoint 'alpha') | Should -Be 'data'
            (Get-VmVolume src).Metadata['job'] | Should -Be 'build'
        }

        It 'sends only the delta the second time' {
            Assert-RealComponent $Zfs
            $src = New-VmVolume; $dst = New-VmVolume
            Set-Content (Join-Path $src.Mountpoint 'alpha') 'a'
            $src | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -TargetVolumeId $dst.Id | Out-Null
            Set-Content (Join-Path $src.Mountpoint 'beta') 'b'
            $snap = $src | New-VmVolumeSnapshot
            ($snap | Send-VmVolumeSnapshot -Path (Join-Path $script:StateHome 'd.zstream') -Have (Get-VmVolumeHave -VolumeId $dst.Id)).Incremental | Should -BeTrue
            $r = $snap | Send-VmVolumeSnapshot -TargetVolumeId $dst.Id
            Test-Path (Join-Path $r.Mountpoint 'beta') | Should -BeTrue
            @(Get-VmVolumeHave -VolumeId $dst.Id).Count | Should -Be 2
        }

        It 'refuses to remove a volume with snapshots unless -Recurse; -WhatIf destroys nothing' {
            Assert-RealComponent $Zfs
            New-VmVolume -Name keep | New-VmVolumeSnapshot | Out-Null
            { Remove-VmVolume -Id keep -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeHasSnapshots,VmTools.Commands.RemoveVmVolumeCommand'
            Remove-VmVolume -Id keep -Recurse -WhatIf
            @(Get-VmVolume).Count | Should -Be 2
            @(Remove-VmVolume -Id keep -Recurse -PassThru).Count | Should -Be 2
            @(Get-VmVolume).Count | Should -Be 0
        }

        It 'reports an unknown volume as VolumeNotFound' {
            Assert-RealComponent $Zfs
            { Get-VmVolume -Id nope -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeNotFound,VmTools.Commands.GetVmVolumeCommand'
            { New-VmVolumeSnapshot -VolumeId ([guid]::Empty) -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeNotFound,VmTools.Commands.NewVmVolumeSnapshotCommand'
        }

        It 'refuses to send a volume that is not a snapshot and writes no file' {
            Assert-RealComponent $Zfs
            $file = Join-Path $script:StateHome 'never.zstream'
            { New-VmVolume | Send-VmVolumeSnapshot -Path $file -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeNotASnapshot,VmTools.Commands.SendVmVolumeSnapshotCommand'
            Test-Path $file | Should -BeFalse
        }

        It 'refuses a full stream into a volume that has snapshots, binds VolumeId from a Volume, and takes wildcards' {
            Assert-RealComponent $Zfs
            $file = Join-Path $script:StateHome 'full.zstream'
            New-VmVolume | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -Path $file | Out-Null
            New-VmVolume -Name target | New-VmVolumeSnapshot | Out-Null
            { Get-VmVolume target | Receive-VmVolumeSnapshot -Path $file -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeReceiveFullStreamIntoSnapshots,VmTools.Commands.ReceiveVmVolumeSnapshotCommand'
            @(Get-VmVolume target | Get-VmVolumeSnapshot).Count | Should -Be 1
            (Get-VmVolume TAR* -ExcludeSnapshots).Name | Should -Be 'target' -Because 'patterns match names as well as ids'
            Get-VmVolume nomatch* | Should -BeNullOrEmpty
            { Remove-VmVolume nosuch -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeNotFound,VmTools.Commands.RemoveVmVolumeCommand'
        }

        # Twin: VolumeCmdletTests.SetVmVolume_MergesMetadata_NullRemovesAKey_ReplaceDropsTheRest_AndItSurvivesANewSession
        It 'changes a volume''s metadata with Set-VmVolume' {
            Assert-RealComponent $Zfs
            New-VmVolume -Name labelled -Metadata @{ branch = 'main'; stale = 'yes' } | Out-Null
            $v = Set-VmVolume label* -Metadata @{ owner = 'ci'; stale = $null } -PassThru
            $v.Metadata['owner'] | Should -Be 'ci'
            $v.Metadata['branch'] | Should -Be 'main'
            $v.Metadata.ContainsKey('stale') | Should -BeFalse
            (Get-VmVolume labelled | Set-VmVolume -Metadata @{ only = '1' } -Replace -PassThru).Metadata.Keys | Should -Be @('only')
            { Set-VmVolume nosuch -Metadata @{ a = 1 } -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeNotFound,VmTools.Commands.SetVmVolumeCommand'
        }

        # Twin: Restore_ToAnOlderSnapshot_NeedsDestroyNewer_WhatIfNamesAndKeepsS2_ThenTheVolumeHoldsAOnly
        It 'rolls a volume back with Restore-VmVolumeSnapshot: refused while newer snapshots exist, with -DestroyNewer the volume holds A only and s2 is gone' {
            Assert-RealComponent $Zfs
            $v = New-VmVolume -Name work
            Set-Content -Path (Join-Path $v.Mountpoint 'A') -Value 'a' -NoNewline
            $s1 = $v | New-VmVolumeSnapshot
            Set-Content -Path (Join-Path $v.Mountpoint 'B') -Value 'b' -NoNewline
            $s2 = $v | New-VmVolumeSnapshot

            { Restore-VmVolumeSnapshot -VolumeId $v.Id -Snapshot $s1.Id -ErrorAction Stop } |
                Should -Throw -ErrorId 'VolumeSnapshotNotLatest,VmTools.Commands.RestoreVmVolumeSnapshotCommand'
            Join-Path $v.Mountpoint 'B' | Should -Exist
            @(& zfs list -H -o name -t snapshot -r $v.Dataset) | Should -Be @($s1.Dataset, $s2.Dataset)

            Restore-VmVolumeSnapshot -Name work -Snapshot $s1.Id -DestroyNewer -WhatIf
            @(& zfs list -H -o name -t snapshot -r $v.Dataset) | Should -Be @($s1.Dataset, $s2.Dataset)

            $s1 | Restore-VmVolumeSnapshot -DestroyNewer -Confirm:$false
            Get-Content -Raw (Join-Path $v.Mountpoint 'A') | Should -Be 'a'
            Join-Path $v.Mountpoint 'B' | Should -Not -Exist
            @(& zfs list -H -o name -t snapshot -r $v.Dataset) | Should -Be @($s1.Dataset)
            (Get-VmVolumeSnapshot $v.Id).Id | Should -Be @($s1.Id)
        }

        # Twin: VolumeRollbackTests.WhileARunningVmHasItsDiskAttached_IsVolumeInUseByVm_AndNothingIsRolledBack_AfterTheVmStops_ItRollsBack
        It 'refuses Restore-VmVolumeSnapshot with VolumeInUseByVm while a running VM has the volume''s disk attached, keeping its data, and rolls back once the VM is stopped' {
            Assert-RealComponent $Zfs
            $guest = Get-TestGuest
            Assert-RealComponent $guest
            function Get-DiskStart([string] $Path) {
                $f = [IO.File]::OpenRead($Path)
                try { $b = [byte[]]::new(16); $f.ReadExactly($b); [Text.Encoding]::ASCII.GetString($b) } finally { $f.Dispose() }
            }
            try {
                $v = New-VmVolume -Name attached -DiskSizeGB 1 -DiskFormat Raw
                $s1 = $v | New-VmVolumeSnapshot
                # After the snapshot: bytes in the disk image and a file beside it, which a rollback would discard.
                $f = [IO.File]::OpenWrite($v.DiskImagePath); $f.Write([Text.Encoding]::ASCII.GetBytes('WRITTEN-AFTER-S1')); $f.Dispose()
                Set-Content -Path (Join-Path $v.Mountpoint 'later') -Value 'after s1' -NoNewline
                $base = Join-Path $script:StateHome 'base.qcow2'
                & qemu-img create -q -f qcow2 $base 16M
                $vm = Start-FlightVm -ImagePath $base -Name user -Volume $v -Kernel $guest.Kernel -Initrd $guest.Initrd -KernelArgs $guest.KernelArgs -MemoryMB 96
                $vm.VolumePaths | Should -Be @($v.DiskImagePath)

                $e = { $s1 | Restore-VmVolumeSnapshot -Confirm:$false -ErrorAction Stop } |
                    Should -Throw -ErrorId 'VolumeInUseByVm,VmTools.Commands.RestoreVmVolumeSnapshotCommand' -PassThru
                $e.CategoryInfo.Category | Should -Be 'ResourceBusy'
                $e.Exception.Message | Should -BeLike "*VM 'user'*"
                Get-DiskStart $v.DiskImagePath | Should -Be 'WRITTEN-AFTER-S1'
                Get-Content -Raw (Join-Path $v.Mountpoint 'later') | Should -Be 'after s1'
                @(& zfs list -H -o name -t snapshot -r $v.Dataset) | Should -Be @($s1.Dataset)

                Stop-FlightVm user -Force
                (Restore-VmVolumeSnapshot -Name attached -Snapshot $s1.Id -PassThru).DiskImagePath | Should -Be $v.DiskImagePath
                Get-DiskStart $v.DiskImagePath | Should -Be ([string][char]0 * 16)
                Join-Path $v.Mountpoint 'later' | Should -Not -Exist
            }
            finally {
                Get-FlightVm | Remove-FlightVm -Force -ErrorAction SilentlyContinue
                Remove-Item -Recurse -Force $guest.Directory -ErrorAction Ignore
            }
        }

        It 'exposes a data disk as DiskImagePath' {
            Assert-RealComponent $Zfs
            $v = New-VmVolume -DiskSizeGB 2 -DiskFormat Raw
            $v.Type | Should -Be 'disk'
            (Get-Item $v.DiskImagePath).Length | Should -Be 2GB
            (New-VmVolume | New-VmVolumeDisk -SizeGB 1 -Format Qcow2).DiskImagePath | Should -BeLike '*disk.qcow2'
        }

        It 'brings volumes back after the pool is exported (host restart)' {
            Assert-RealComponent $Zfs
            $before = New-VmVolume -Name kept
            Set-Content (Join-Path $before.Mountpoint 'alpha') 'x'
            & zpool export -f $script:pool
            $after = Get-VmVolume kept
            $after.Id | Should -Be $before.Id
            $after.CreatedAt | Should -Be $before.CreatedAt
            Test-Path (Join-Path $after.Mountpoint 'alpha') | Should -BeTrue
            (Get-VmVolumePool).State | Should -Be 'Online'
        }
    }

    It 'fails on a vdev file that is not a pool and leaves the file' {
        Assert-RealComponent $Zfs
        New-Item -ItemType Directory -Force (Split-Path $script:vdev) | Out-Null
        Set-Content -Path $script:vdev -Value 'not a pool' -NoNewline
        { Initialize-VmVolumePool -PoolName $script:pool -VdevPath $script:vdev -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeVdevNotAPool,VmTools.Commands.InitializeVmVolumePoolCommand'
        Get-Content -Raw $script:vdev | Should -Be 'not a pool'
        @(Get-VmVolumePool).Count | Should -Be 0
    }

    It 'refuses a replica destination that carries a password (Sync-VmVolume, Send-VmVolumeSnapshot -Destination) without repeating it' {
        $e = { Sync-VmVolume -VolumeId nope -Destination 'ssh://root:s3cret@10.0.0.1/tank/x' -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeDestinationInvalid,VmTools.Commands.SyncVmVolumeCommand' -PassThru
        $e.Exception.Message | Should -Not -Match 's3cret'
        { Send-VmVolumeSnapshot -Id nope -Destination "ssh://root@10.0.0.1/tank/x';reboot'" -ErrorAction Stop } | Should -Throw -ErrorId 'VolumeDatasetNameInvalid,VmTools.Commands.SendVmVolumeSnapshotCommand'
    }

    It 'needs an initialized pool' {
        Assert-RealComponent $Zfs
        { New-VmVolume -ErrorAction Stop } | Should -Throw -ErrorId 'VolumePoolNotInitialized,VmTools.Commands.NewVmVolumeCommand'
    }
}
