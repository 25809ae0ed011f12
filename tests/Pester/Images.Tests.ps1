#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# User-level cases of the registry cache in a real pwsh, including the one-shot `pwsh -c` steps a CI
# pipeline writes. A docker-registry on a free port is started for this file (RealComponents.psm1).
# Cases with a hosted-engine twin in tests/VmTools.Tests/Images/Qcow2CacheTests.cs name it.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $null = Import-VmToolsUnderTest
    $script:Registry = Start-TestRegistry
    $script:SavedEnvironment = @{ VMTOOLS_HOME = $env:VMTOOLS_HOME; REGISTRY_CACHE = $env:REGISTRY_CACHE; QCOW2_CACHE_TAG = $env:QCOW2_CACHE_TAG }
    $env:REGISTRY_CACHE = $null; $env:QCOW2_CACHE_TAG = $null
    $script:StateHome = New-TestHome
    $env:VMTOOLS_HOME = $script:StateHome
    $script:Disk = Join-Path $TestDrive 'disk.qcow2'
    if (Find-Program qemu-img) { & qemu-img create -q -f qcow2 $script:Disk 64M }
    $script:QemuImg = if (Find-Program qemu-img) { [pscustomobject]@{ UnavailableReason = $null } } else { [pscustomobject]@{ UnavailableReason = "'qemu-img' is not installed (apt-get install qemu-utils)." } }

    function New-RepositoryName([string] $Name) { "$($Registry.Host)/pester/$Name-$([guid]::NewGuid().ToString('N').Substring(0, 8))" }
}

AfterAll {
    Stop-TestRegistry $script:Registry
    foreach ($k in $script:SavedEnvironment.Keys) { [Environment]::SetEnvironmentVariable($k, $script:SavedEnvironment[$k]) }
    Remove-Item -Recurse -Force $script:StateHome -ErrorAction Ignore
}

Describe 'Qcow2 cache' {
    BeforeEach {
        # Every case starts from an empty state, like a fresh CI runner.
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME -ErrorAction Ignore
    }

    # Twin: Get_AfterSave_InFreshState_PullsVerifiedThenHitsWithZeroBytes
    It 'pulls what was saved into a fresh state, then hits with zero bytes, and counts both' {
        Assert-RealComponent $Registry $QemuImg
        $repo = New-RepositoryName base
        Save-Qcow2Cache -Path $Disk -Repository $repo -Tag t | Out-Null
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME
        $pulled = Get-Qcow2Cache -Repository $repo -Tag t
        $pulled.Status | Should -Be 'Pulled'
        $pulled.BytesDownloaded | Should -BeGreaterThan 0
        $hit = Get-Qcow2Cache -Repository $repo -Tag t
        $hit.Status | Should -Be 'Hit'
        $hit.BytesDownloaded | Should -Be 0
        $hit.Digest | Should -Be $pulled.Digest
        $stats = Get-Qcow2CacheStatistics
        $stats.Hits | Should -Be 1
        $stats.Pulls | Should -Be 1
    }

    # Twin: Save_UnchangedImageAgain_UploadsZeroBlobBytes
    It 're-pushes an unchanged image without uploading blobs' {
        Assert-RealComponent $Registry $QemuImg
        $repo = New-RepositoryName repush
        (Save-Qcow2Cache -Path $Disk -Repository $repo -Tag a).BytesUploaded | Should -BeGreaterThan 0
        (Save-Qcow2Cache -Path $Disk -Repository $repo -Tag b).BytesUploaded | Should -Be 0
    }

    # Twin: Get_MissingTags_IsMiss_AndTestAnswersFalse
    It 'answers a miss, and Test-Qcow2Cache says false' {
        Assert-RealComponent $Registry
        $repo = New-RepositoryName none
        (Get-Qcow2Cache -Repository $repo).Status | Should -Be 'Miss'
        Test-Qcow2Cache -Repository $repo | Should -BeFalse
        (Get-Qcow2CacheStatistics).Misses | Should -Be 1
    }

    # Twin: Get_BadRepository_FailsWithSpecificErrorId
    It 'refuses an invalid repository with ImageReferenceInvalid' {
        { Get-Qcow2Cache -Repository 'UPPER/case' -ErrorAction Stop } |
            Should -Throw -ErrorId 'ImageReferenceInvalid,VmTools.Commands.GetQcow2CacheCommand'
    }

    # Twin: Get_BuildOnMiss_BuildsPublishesThenOthersPull
    It 'builds and publishes on a miss' {
        Assert-RealComponent $Registry $QemuImg
        $repo = New-RepositoryName build
        (Get-Qcow2Cache -Repository $repo -Tag b1 -Build { $Disk }).Status | Should -Be 'Built'
        Test-Qcow2Cache -Repository $repo -Tag b1 | Should -BeTrue
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME
        (Get-Qcow2Cache -Repository $repo -Tag b1 -Build { throw 'must not build' }).Status | Should -Be 'Pulled'
    }

    It 'keeps a build in the local store with REGISTRY_CACHE=false, and never touches the registry' {
        Assert-RealComponent $Registry $QemuImg
        $repo = New-RepositoryName local
        $env:REGISTRY_CACHE = 'false'
        try {
            Test-Qcow2Cache -Repository $repo -Tag l1 | Should -BeFalse
            $built = Get-Qcow2Cache -Repository $repo -Tag l1 -Build { $Disk }
            $built.Status | Should -Be 'Built'
            $again = Get-Qcow2Cache -Repository $repo -Tag l1 -Build { throw 'must not build' }
            $again.Status | Should -Be 'Hit'
            $again.Source | Should -Be 'Local'
            $again.Path | Should -Be $built.Path
            Test-Qcow2Cache -Repository $repo -Tag l1 | Should -BeTrue
        } finally { $env:REGISTRY_CACHE = $null }
        Test-Qcow2Cache -Repository $repo -Tag l1 | Should -BeFalse -Because 'the registry never received the image'
    }
}

Describe 'Qcow2 cache in one-shot pwsh CI steps' {
    BeforeAll {
        $script:StepHome = New-TestHome
        $script:StepEnvironment = @{ VMTOOLS_HOME = $StepHome; REGISTRY_CACHE = $null; QCOW2_CACHE_TAG = $null }
    }
    AfterAll { Remove-Item -Recurse -Force $script:StepHome -ErrorAction Ignore }

    It 'branches on Test-Qcow2Cache: build before the image is published, skip after' {
        Assert-RealComponent $Registry $QemuImg
        $repo = New-RepositoryName step
        $step = "if (Test-Qcow2Cache -Repository '$repo' -Tag s1) { 'use cache' } else { 'build' }"
        $before = Invoke-Pwsh $step -Environment $StepEnvironment
        $before.ExitCode | Should -Be 0
        $before.Output | Should -Be 'build'
        Save-Qcow2Cache -Path $Disk -Repository $repo -Tag s1 | Out-Null
        (Invoke-Pwsh $step -Environment $StepEnvironment).Output | Should -Be 'use cache'
    }

    It 'fails the step (exit 1, the message on stderr) when its last cmdlet fails' {
        $r = Invoke-Pwsh "Get-Qcow2Cache -Repository 'UPPER/case'" -Environment $StepEnvironment
        $r.ExitCode | Should -Be 1
        $r.Error | Should -Match 'is not a valid image reference'
    }

    It 'sets $? after a failing cmdlet, catches its ErrorId with -ErrorAction Stop, and stops under $ErrorActionPreference = Stop' {
        $step = @(
            "Get-Qcow2Cache -Repository 'UPPER/case' 2>`$null; `"ok=`$?`""
            "try { Get-Qcow2Cache -Repository 'UPPER/case' -ErrorAction Stop; 'not caught' } catch { `$_.FullyQualifiedErrorId }"
            "`$ErrorActionPreference = 'Stop'; Get-Qcow2Cache -Repository 'UPPER/case'; 'never here'"
        ) -join '; '
        $r = Invoke-Pwsh $step -Environment $StepEnvironment
        $r.Output | Should -Be @('ok=False', 'ImageReferenceInvalid,VmTools.Commands.GetQcow2CacheCommand')
        $r.ExitCode | Should -Be 1
    }

    It 'stops the whole step on -ErrorAction Stop, as built-in cmdlets do (exit 1, nothing after it runs)' {
        $r = Invoke-Pwsh "Get-Qcow2Cache -Repository 'UPPER/case' -ErrorAction Stop; 'after the failure'" -Environment $StepEnvironment
        $r.ExitCode | Should -Be 1
        $r.Output | Should -Not -Contain 'after the failure'
        $r.Error | Should -Match 'is not a valid image reference'
        $plain = Invoke-Pwsh "Get-Qcow2Cache -Repository 'UPPER/case'; 'after the failure'" -Environment $StepEnvironment
        $plain.Output | Should -Contain 'after the failure'
    }

    It 'treats an unreachable registry as a miss with a warning, not a failed step' {
        $r = Invoke-Pwsh "if (Test-Qcow2Cache -Repository 127.0.0.1:1/none/x -Tag t) { 'use cache' } else { 'build' }" -Environment $StepEnvironment
        $r.ExitCode | Should -Be 0
        $r.Output | Should -Contain 'build'
        ($r.Output + $r.Error) -join "`n" | Should -Match 'RegistryUnreachable'
    }
}
