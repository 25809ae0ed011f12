#Requires -Modules Pester
# User-level cases of the registry cache for pwsh users' CI. Each has a twin in
# tests/VmTools.Tests/Images (hosted engine), which is what runs in this repository's CI.
# Needs: a registry at $env:VMTOOLS_TEST_REGISTRY (e.g. 127.0.0.1:5000, plain HTTP) and qemu-img.

BeforeAll {
    Import-Module "$PSScriptRoot/../../out/VmTools/VmTools.psd1" -Force
    $env:VMTOOLS_HOME = Join-Path ([IO.Path]::GetTempPath()) "vmtools-pester-$([guid]::NewGuid().ToString('N'))"
    $script:Registry = $env:VMTOOLS_TEST_REGISTRY ?? '127.0.0.1:5000'
    $script:Disk = Join-Path $TestDrive 'disk.qcow2'
    qemu-img create -q -f qcow2 $script:Disk 64M
}

AfterAll { Remove-Item -Recurse -Force $env:VMTOOLS_HOME -ErrorAction SilentlyContinue }

Describe 'Qcow2 cache' {
    It 'pulls what was saved, then hits with zero bytes' {   # Get_AfterSave_InFreshState_PullsVerifiedThenHitsWithZeroBytes
        $repo = "$script:Registry/pester/base-$([guid]::NewGuid().ToString('N').Substring(0,8))"
        Save-Qcow2Cache -Path $script:Disk -Repository $repo -Tag t | Out-Null
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME
        (Get-Qcow2Cache -Repository $repo -Tag t).Status | Should -Be 'Pulled'
        $hit = Get-Qcow2Cache -Repository $repo -Tag t
        $hit.Status | Should -Be 'Hit'
        $hit.BytesDownloaded | Should -Be 0
    }

    It 're-pushes an unchanged image without uploading blobs' {   # Save_UnchangedImageAgain_UploadsZeroBlobBytes
        $repo = "$script:Registry/pester/repush-$([guid]::NewGuid().ToString('N').Substring(0,8))"
        Save-Qcow2Cache -Path $script:Disk -Repository $repo -Tag a | Out-Null
        (Save-Qcow2Cache -Path $script:Disk -Repository $repo -Tag b).BytesUploaded | Should -Be 0
    }

    It 'answers a miss, and Test-Qcow2Cache says false' {   # Get_MissingTags_IsMiss_AndTestAnswersFalse
        $repo = "$script:Registry/pester/none-$([guid]::NewGuid().ToString('N').Substring(0,8))"
        (Get-Qcow2Cache -Repository $repo).Status | Should -Be 'Miss'
        Test-Qcow2Cache -Repository $repo | Should -BeFalse
    }

    It 'refuses an invalid repository with ImageReferenceInvalid' {   # Get_BadRepository_FailsWithSpecificErrorId
        { Get-Qcow2Cache -Repository 'UPPER/case' -ErrorAction Stop } |
            Should -Throw -ErrorId 'ImageReferenceInvalid,VmTools.Commands.GetQcow2CacheCommand'
    }

    It 'builds and publishes on a miss' {   # Get_BuildOnMiss_BuildsPublishesThenOthersPull
        $repo = "$script:Registry/pester/build-$([guid]::NewGuid().ToString('N').Substring(0,8))"
        (Get-Qcow2Cache -Repository $repo -Tag b1 -Build { $script:Disk }).Status | Should -Be 'Built'
        Test-Qcow2Cache -Repository $repo -Tag b1 | Should -BeTrue
    }
}
