#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# User-level cases of New-Qcow2Image in a real pwsh. This file starts its own podman API service
# (as root, runc) and a registry on a free port (RealComponents.psm1) and points DOCKER_HOST at the
# engine. Also needs busybox-static, e2fsprogs and qemu-img. Each case has a hosted-engine twin in
# tests/VmTools.Tests/Engine/NewQcow2ImageTests.cs (named in its comment).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $null = Import-VmToolsUnderTest
    $script:SavedEnvironment = @{ VMTOOLS_HOME = $env:VMTOOLS_HOME; DOCKER_HOST = $env:DOCKER_HOST; REGISTRY_CACHE = $env:REGISTRY_CACHE }
    $env:REGISTRY_CACHE = $null
    $script:StateHome = New-TestHome
    $env:VMTOOLS_HOME = $script:StateHome
    $script:RegistryServer = Start-TestRegistry
    $script:Registry = $RegistryServer.Host
    $script:Podman = Start-TestPodman -InsecureRegistry @($RegistryServer.Host | Where-Object { $_ })
    $env:DOCKER_HOST = $Podman.DockerHost
    $script:Engine = $env:DOCKER_HOST
    $script:Tools = if (-not (Find-Program busybox)) { [pscustomobject]@{ UnavailableReason = "'busybox' is not installed (apt-get install busybox-static)." } }
        elseif (-not (Find-Program mkfs.ext4)) { [pscustomobject]@{ UnavailableReason = "'mkfs.ext4' is not installed (apt-get install e2fsprogs)." } }
        elseif (-not (Find-Program qemu-img)) { [pscustomobject]@{ UnavailableReason = "'qemu-img' is not installed (apt-get install qemu-utils)." } }
        else { [pscustomobject]@{ UnavailableReason = $null } }

    # A FROM scratch context around busybox-static, with a kernel and initrd placeholder in /boot.
    function New-TinyContext([string] $Dir, [string] $Run = 'echo built-by-run > /etc/built') {
        New-Item -ItemType Directory -Force "$Dir/rootfs/bin", "$Dir/rootfs/etc", "$Dir/rootfs/boot" | Out-Null
        Copy-Item (Find-Program busybox) "$Dir/rootfs/bin/busybox"
        New-Item -ItemType SymbolicLink -Path "$Dir/rootfs/bin/sh" -Target busybox | Out-Null
        Set-Content "$Dir/rootfs/etc/hostname" 'vmtools-tiny'
        Set-Content "$Dir/rootfs/boot/vmlinuz-6.1.0-10-amd64" 'kernel'
        Set-Content "$Dir/rootfs/boot/initrd.img-6.1.0-10-amd64" 'initrd'
        $step = if ($Run) { "RUN [`"/bin/busybox`", `"sh`", `"-c`", `"$Run`"]" } else { '' }
        Set-Content "$Dir/Containerfile" "FROM scratch`nCOPY rootfs/ /`n$step"
    }
}

AfterAll {
    Stop-TestPodman $script:Podman
    Stop-TestRegistry $script:RegistryServer
    foreach ($k in $script:SavedEnvironment.Keys) { [Environment]::SetEnvironmentVariable($k, $script:SavedEnvironment[$k]) }
    Remove-Item -Recurse -Force $script:StateHome -ErrorAction Ignore
}

Describe 'New-Qcow2Image' {
    It 'builds a checked disk with its kernel from a Containerfile' {   # Containerfile_BuildsACheckedDiskWithKernel_ReportingProgressAndBuildLog
        Assert-RealComponent $Podman $Tools
        New-TinyContext "$TestDrive/ctx"
        $image = New-Qcow2Image "$TestDrive/out/disk.qcow2" -Containerfile "$TestDrive/ctx/Containerfile" -Network host
        qemu-img check -q $image.Path
        $LASTEXITCODE | Should -Be 0
        Get-Content $image.KernelPath | Should -Be 'kernel'
        Get-Content $image.InitrdPath | Should -Be 'initrd'
    }

    It 'closes the loop with Get-Qcow2Cache -Build: a fresh state pulls disk, kernel and initrd' {   # GetQcow2CacheBuild_MissBuildsWithNewQcow2ImageAndPublishes_ThenAFreshStatePullsKernelAndInitrd
        Assert-RealComponent $Podman $RegistryServer $Tools
        New-TinyContext "$TestDrive/loop"
        $repo = "$script:Registry/pester/e2e-base-$([guid]::NewGuid().ToString('N').Substring(0,8))"
        Push-Location "$TestDrive/loop"
        try {
            (Get-Qcow2Cache -Repository $repo -Tag base-1 -Build { New-Qcow2Image bin/output/qcow2/disk.qcow2 -Containerfile ./Containerfile -Network host -RequireKernel }).Status | Should -Be 'Built'
        } finally { Pop-Location }
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME
        $pulled = Get-Qcow2Cache -Repository $repo -Tag base-1 -Build { throw 'must not build' }
        $pulled.Status | Should -Be 'Pulled'
        $pulled.KernelPath | Should -Not -BeNullOrEmpty
        $pulled.InitrdPath | Should -Not -BeNullOrEmpty
    }

    It 'turns an image the engine has into a disk' {   # Image_AnImportedImageBecomesADisk
        Assert-RealComponent $Podman $Tools
        New-TinyContext "$TestDrive/img" -Run $null
        $built = New-Qcow2Image "$TestDrive/img.qcow2" -Containerfile "$TestDrive/img/Containerfile" -ImageTag localhost/pester/tiny:1
        (New-Qcow2Image "$TestDrive/from-image.qcow2" -Image localhost/pester/tiny:1).ImageId | Should -Be $built.ImageId
    }

    It 'needs no engine for a rootfs tarball, and warns when it has no kernel' {   # Rootfs_NeedsNoEngine_AndWarnsWithoutAKernel_OrFailsWithRequireKernel
        Assert-RealComponent $Tools
        New-Item -ItemType Directory -Force "$TestDrive/nk/etc" | Out-Null
        Set-Content "$TestDrive/nk/etc/hostname" 'nokernel'
        tar -C "$TestDrive/nk" -cf "$TestDrive/nk.tar" .
        $env:DOCKER_HOST = 'unix:///nonexistent/engine.sock'
        try {
            $image = New-Qcow2Image "$TestDrive/nk.qcow2" -RootfsPath "$TestDrive/nk.tar" -SizeGB 0.5 -WarningVariable warnings -WarningAction SilentlyContinue
            $image.KernelPath | Should -BeNullOrEmpty
            $warnings | Should -Match 'no kernel under /boot'
            { New-Qcow2Image "$TestDrive/nk2.qcow2" -RootfsPath "$TestDrive/nk.tar" -RequireKernel -ErrorAction Stop } |
                Should -Throw -ErrorId 'Qcow2ImageKernelNotFound,VmTools.Commands.NewQcow2ImageCommand'
        } finally { $env:DOCKER_HOST = $script:Engine }
    }

    It 'says ContainerEngineUnreachable when no engine answers' {   # NoEngineAnswering_IsContainerEngineUnreachable
        Assert-RealComponent $Tools
        New-TinyContext "$TestDrive/none"
        { New-Qcow2Image "$TestDrive/none.qcow2" -Containerfile "$TestDrive/none/Containerfile" -EngineHost unix:///nonexistent/engine.sock -ErrorAction Stop } |
            Should -Throw -ErrorId 'ContainerEngineUnreachable,VmTools.Commands.NewQcow2ImageCommand'
    }

    It 'reports a failing build step with its log' {   # FailingBuild_IsQcow2ImageBuildFailed_WithTheBuildLog_AndNothingLeftBehind
        Assert-RealComponent $Podman $Tools
        New-TinyContext "$TestDrive/fail" -Run 'echo step-says-goodbye; exit 7'
        $err = { New-Qcow2Image "$TestDrive/fail.qcow2" -Containerfile "$TestDrive/fail/Containerfile" -NoCache -Network host -ErrorAction Stop } |
            Should -Throw -ErrorId 'Qcow2ImageBuildFailed,VmTools.Commands.NewQcow2ImageCommand' -PassThru
        $err.Exception.Message | Should -Match 'step-says-goodbye'
        "$TestDrive/fail.qcow2" | Should -Not -Exist
    }

    It 'builds nothing with -WhatIf' {   # WhatIf_BuildsNothing_AndContactsNoEngine
        Assert-RealComponent $Tools
        New-TinyContext "$TestDrive/whatif"
        New-Qcow2Image "$TestDrive/whatif.qcow2" -Containerfile "$TestDrive/whatif/Containerfile" -EngineHost unix:///nonexistent/engine.sock -WhatIf
        "$TestDrive/whatif.qcow2" | Should -Not -Exist
    }

    It 'refuses bad input with <ErrorId>' -TestCases @(   # BadInput_FailsWithASpecificErrorId_AndWritesNothing
        @{ Script = { New-Qcow2Image "$TestDrive/x.qcow2" -Containerfile "$TestDrive/missing/Containerfile" -ErrorAction Stop }; ErrorId = 'Qcow2ImageInputNotFound' }
        @{ Script = { New-Qcow2Image "$TestDrive/x.qcow2" -RootfsPath "$TestDrive/missing.tar" -ErrorAction Stop }; ErrorId = 'Qcow2ImageInputNotFound' }
        @{ Script = { Set-Content "$TestDrive/keep.qcow2" 'keep me'; New-Qcow2Image "$TestDrive/keep.qcow2" -RootfsPath "$TestDrive/nk.tar" -ErrorAction Stop }; ErrorId = 'Qcow2ImageExists' }
        @{ Script = { New-Qcow2Image "$TestDrive/x.qcow2" -Image 'Not A Reference' -ErrorAction Stop }; ErrorId = 'ContainerImageReferenceInvalid' }
        @{ Script = { New-Qcow2Image "$TestDrive/x.qcow2" -Image alpine -EngineHost 'ssh://me@host' -ErrorAction Stop }; ErrorId = 'ContainerEngineHostInvalid' }
    ) {
        param($Script, $ErrorId)
        $Script | Should -Throw -ErrorId "$ErrorId,VmTools.Commands.NewQcow2ImageCommand"
        "$TestDrive/x.qcow2" | Should -Not -Exist
    }
}
