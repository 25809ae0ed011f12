#Requires -Modules Pester
# Cache housekeeping as a pwsh user sees it: Get-Qcow2CacheImage and Remove-Qcow2CacheImage over a local
# store filled by Save-Qcow2Cache with REGISTRY_CACHE=false (no registry needed). Twins in
# tests/VmTools.Tests/Images/CacheHousekeepingCmdletTests.cs (hosted engine) and
# tests/VmTools.Core.Tests/Images/CacheHousekeepingTests.cs (core, real registry).
# Needs: the module built into out/VmTools, and qemu-img.

BeforeAll {
    Import-Module "$PSScriptRoot/../../out/VmTools/VmTools.psd1" -Force
    $script:SavedEnv = @{ VMTOOLS_HOME = $env:VMTOOLS_HOME; REGISTRY_CACHE = $env:REGISTRY_CACHE }
    $env:REGISTRY_CACHE = 'false'
    # Never contacted: with REGISTRY_CACHE=false the store is local only.
    $script:Registry = '127.0.0.1:9/pester'
    $script:Sizes = 0

    function script:New-Home {
        $env:VMTOOLS_HOME = Join-Path ([IO.Path]::GetTempPath()) "vmtools-pester-prune-$([guid]::NewGuid().ToString('N'))"
    }

    function script:Save-LocalImage([string] $Name) {
        $disk = Join-Path $TestDrive "$Name-$([guid]::NewGuid().ToString('N').Substring(0, 8)).qcow2"
        # A distinct virtual size per image: identical empty disks would be one layer digest under two references.
        $script:Sizes++
        qemu-img create -q -f qcow2 $disk "$(16 + $script:Sizes)M"
        if ($LASTEXITCODE -ne 0) { throw "qemu-img failed for $disk" }
        (Save-Qcow2Cache -Path $disk -Repository "$script:Registry/$Name" -Tag v1).LayerDigest
    }

    # A VM record that uses a base, inserted through the core as Start-FlightVm would record it (nothing boots).
    function script:Add-VmRecord([string] $Name, [string] $ImagePath) {
        $root = $env:VMTOOLS_HOME
        $paths = [VmTools.Core.State.VmToolsPaths]::new((Join-Path $root 'state'), (Join-Path $root 'cache'), (Join-Path $root 'run')).EnsureCreated()
        $db = [VmTools.Core.State.StateDb]::Open($paths.DatabasePath)
        try {
            $dir = Join-Path $paths.VmDirectory $Name
            # FlightVm has required members, so C# marks its constructor obsolete-as-error; PowerShell's cast refuses it, Activator does not.
            $vm = [Activator]::CreateInstance([VmTools.Core.Vms.FlightVm])
            # ::New() would mean a constructor to PowerShell; MacAddresses.New is a static method.
            $mac = [VmTools.Core.Vms.MacAddresses].GetMethod('New').Invoke($null, @())
            $fields = @{
                Name = $Name; Id = [VmTools.Core.Vms.VmNaming]::NewId(); State = 'Stopped'; ImagePath = $ImagePath; DiskMode = 'Overlay'
                OverlayPath = "$dir/overlay.qcow2"; Directory = $dir; ConsoleLogPath = "$dir/console.log"; QmpSocketPath = "$dir/qmp.sock"
                Network = 'None'; MacAddress = $mac; MemoryMB = 64; CpuCount = 1; CreatedAt = [DateTimeOffset]::UtcNow
            }
            foreach ($f in $fields.GetEnumerator()) { $vm.($f.Key) = $f.Value }
            [VmTools.Core.Vms.VmStore]::new($db, $paths).Insert($null, $vm)
        }
        finally { $db.Dispose() }
    }
}

AfterAll {
    foreach ($k in $script:SavedEnv.Keys) { Set-Item "env:$k" $script:SavedEnv[$k] }
}

Describe 'Cache housekeeping' {
    BeforeEach { New-Home }
    AfterEach { Remove-Item -Recurse -Force $env:VMTOOLS_HOME -ErrorAction SilentlyContinue }

    It 'lists a saved image with its reference, and the table view shows it' {   # GetImage_ListsEachStoredImage_WithItsReferences_AndTheVmsUsingIt
        $digest = Save-LocalImage 'listed'
        $image = Get-Qcow2CacheImage
        $image.LayerDigest | Should -Be $digest
        $image.References | Should -Be @("$script:Registry/listed:v1")
        $image.Size | Should -BeGreaterThan 0
        $image.InUse | Should -BeFalse
        ($image | Format-Table | Out-String -Width 300) | Should -Match ([regex]::Escape("$script:Registry/listed:v1"))
        (Get-Qcow2CacheImage -Reference "$script:Registry/list*").LayerDigest | Should -Be $digest
    }

    It '-KeepLatest 0 removes only the image no VM uses' {   # KeepLatest_Zero_RemovesOnlyTheUnusedImage
        $a = Save-LocalImage 'a'
        $b = Save-LocalImage 'b'
        $a | Should -Not -Be $b
        Add-VmRecord 'vm-a1' (Get-Qcow2CacheImage -Digest $a).Path
        Add-VmRecord 'vm-a2' (Get-Qcow2CacheImage -Digest $a).Path
        $removed = Remove-Qcow2CacheImage -KeepLatest 0 -PassThru
        $removed.LayerDigest | Should -Be $b
        (Get-Qcow2CacheImage).LayerDigest | Should -Be $a
        (Get-Qcow2CacheImage).UsedBy | Sort-Object | Should -Be @('vm-a1', 'vm-a2')
        (Get-Qcow2CacheStatistics).Evictions | Should -Be 1
    }

    It '-WhatIf names the digest, size and references of each image, and removes nothing' {
        $digest = Save-LocalImage 'whatif'
        $transcript = Join-Path $TestDrive "whatif-$([guid]::NewGuid().ToString('N')).txt"
        Start-Transcript -Path $transcript | Out-Null
        Remove-Qcow2CacheImage -KeepLatest 0 -WhatIf
        Stop-Transcript | Out-Null
        $text = Get-Content -Raw $transcript
        $text | Should -Match ([regex]::Escape("Remove cached image $digest ("))
        $text | Should -Match ([regex]::Escape("$script:Registry/whatif:v1"))
        (Get-Qcow2CacheImage).LayerDigest | Should -Be $digest
    }

    It 'refuses an image a VM uses with Qcow2CacheImageInUse, unless -Force' {   # PipedRemoval_OfAnImageInUse_WritesQcow2CacheImageInUse_AndContinues_ForceRemovesIt
        $digest = Save-LocalImage 'used'
        Add-VmRecord 'vm-used' (Get-Qcow2CacheImage -Digest $digest).Path
        { Get-Qcow2CacheImage | Remove-Qcow2CacheImage -ErrorAction Stop } |
            Should -Throw -ErrorId 'Qcow2CacheImageInUse,VmTools.Commands.RemoveQcow2CacheImageCommand'
        Get-Qcow2CacheImage | Should -Not -BeNullOrEmpty
        (Remove-Qcow2CacheImage -Digest $digest -Force -PassThru).Forced | Should -BeTrue
        Get-Qcow2CacheImage | Should -BeNullOrEmpty
    }

    It '-OlderThan takes a number of days' {   # OlderThan_TakesANumberAsDays
        Save-LocalImage 'aged' | Out-Null
        Remove-Qcow2CacheImage -OlderThan 30
        Get-Qcow2CacheImage | Should -Not -BeNullOrEmpty
        Remove-Qcow2CacheImage -OlderThan ([TimeSpan]::Zero)
        Get-Qcow2CacheImage | Should -BeNullOrEmpty
    }

    It 'says Qcow2CacheImageNotFound for a literal digest it does not hold' {   # LiteralsThatMatchNothing_AreNotFound_AndPatternsAreSilent
        { Get-Qcow2CacheImage -Digest ('sha256:' + '0' * 64) -ErrorAction Stop } |
            Should -Throw -ErrorId 'Qcow2CacheImageNotFound,VmTools.Commands.GetQcow2CacheImageCommand'
        Get-Qcow2CacheImage -Reference 'nothing/*' | Should -BeNullOrEmpty
    }

    It 'has help with examples for <_>' -ForEach 'Get-Qcow2CacheImage', 'Remove-Qcow2CacheImage' {
        $help = Get-Help $_ -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        @($help.Examples.Example).Count | Should -BeGreaterThan 0
        @($help.Parameters.Parameter | Where-Object { -not $_.Description }).Name | Should -BeNullOrEmpty
    }
}
