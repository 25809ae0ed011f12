#!/usr/bin/env pwsh
<#
.SYNOPSIS
    A first run of VmTools on embedded defaults: build a tiny base, cache it locally, seed it, boot it, stop it.
.DESCRIPTION
    Needs no registry (REGISTRY_CACHE=false: the local content-addressed store) and no container engine.
    1. kernel   Debian's linux-image package (apt-get download, never installed), unpacked once into
                ~/.cache/vmtools/quickstart-kernel (XDG_CACHE_HOME), its ELF vmlinux taken out of the bzImage
    2. rootfs   a busybox-static root filesystem tarball with /boot/vmlinuz-<abi> and /boot/initrd.img-<abi>
    3. base     Get-Qcow2Cache -Build { New-Qcow2Image -RootfsPath ... }: a miss, so it builds the qcow2
                (ext4, label rootfs) and records it in the local store, with kernel and initrd beside it
    4. seed     New-CloudInitConfig | New-CloudInitIso: a NoCloud seed naming the VM's hostname and MAC
    5. start    Start-FlightVm -Wait -ReadyPattern: a copy-on-write overlay over the base; the initramfs
                mounts the base's root filesystem and the seed, prints what it found, then the ready marker
    6. handles  Get-VmHandles: qemu's pid, start time, QMP socket, liveness
    7. stop     Stop-FlightVm (ACPI power button, graceful) and Remove-FlightVm
    State goes into a temporary VMTOOLS_HOME (removed at the end) unless VMTOOLS_HOME is set.
.EXAMPLE
    dotnet pwsh ./Build.ps1 -Task Quickstart     # builds out/VmTools, then runs this
.EXAMPLE
    dotnet pwsh ./examples/quickstart.ps1 -KeepVm  # leave the VM running to look at it
#>
[CmdletBinding()]
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/VmTools/VmTools.psd1'),
    [string] $Name = 'quickstart',
    [int] $TimeoutSeconds = 300,
    # Leave the VM running (and its state folder in place) instead of stopping and removing it.
    [switch] $KeepVm
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$ReadyMarker = 'VMTOOLS-QUICKSTART-READY'
$clock = [Diagnostics.Stopwatch]::StartNew()

function Step([string] $Title, [scriptblock] $Action) {
    # Prints what is about to happen, runs it, and how long it took.
    Write-Host ('==> {0}' -f $Title) -ForegroundColor Cyan
    $watch = [Diagnostics.Stopwatch]::StartNew()
    $result = & $Action
    Write-Host ('    done in {0:n1} s' -f $watch.Elapsed.TotalSeconds)
    $result
}

foreach ($tool in 'qemu-system-x86_64', 'qemu-img', 'busybox', 'mkfs.ext4', 'tar', 'apt-get', 'dpkg-deb', 'xz') {
    if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore) -and -not ((Test-Path "/usr/sbin/$tool", "/sbin/$tool" -PathType Leaf) -contains $true)) {
        throw "'$tool' is missing. On Debian: apt-get install qemu-system-x86 qemu-utils busybox-static e2fsprogs xz-utils"
    }
}
Import-Module $ModulePath
Import-Module (Join-Path $PSScriptRoot 'TinyGuest.psm1')

$saved = @{ VMTOOLS_HOME = $env:VMTOOLS_HOME; REGISTRY_CACHE = $env:REGISTRY_CACHE }
$ownHome = -not $env:VMTOOLS_HOME
if ($ownHome) { $env:VMTOOLS_HOME = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-quickstart-" + [guid]::NewGuid().ToString('N').Substring(0, 8)) }
$env:REGISTRY_CACHE = 'false'
$work = Join-Path $env:VMTOOLS_HOME 'quickstart'
$null = New-Item -ItemType Directory -Force $work
Write-Host "VMTOOLS_HOME=$env:VMTOOLS_HOME  REGISTRY_CACHE=false (local store only)"

try {
    $cacheRoot = Join-Path ($env:XDG_CACHE_HOME ? $env:XDG_CACHE_HOME : (Join-Path $HOME '.cache')) 'vmtools/quickstart-kernel'
    $kernel = Step "Guest kernel from Debian's linux-image package (cached in $cacheRoot)" {
        Get-DebianGuestKernel -CacheRoot $cacheRoot
    }
    Write-Host "    kernel $($kernel.Version)"

    $rootfs = Step 'Root filesystem tarball: busybox-static, /boot/vmlinuz and a busybox initramfs' {
        $root = Join-Path $work 'rootfs'
        $null = New-Item -ItemType Directory -Force "$root/bin", "$root/etc", "$root/boot", "$root/sbin"
        Copy-Item (Get-Command busybox -CommandType Application | Select-Object -First 1).Source "$root/bin/busybox"
        $null = New-Item -ItemType SymbolicLink -Path "$root/bin/sh" -Target busybox
        Set-Content "$root/etc/hostname" 'quickstart-base'
        Set-Content "$root/etc/motd" 'This line was read from the base image.'
        Copy-Item $kernel.VmlinuxPath "$root/boot/vmlinuz-$($kernel.Version)"
        # The initramfs is the whole userland of this tiny guest: it mounts the base (virtio disk, ext4)
        # and the seed (IDE cdrom, iso9660), prints what it finds, then the ready marker, and powers off
        # on the ACPI power button, so Stop-FlightVm is a graceful shutdown.
        $init = @"
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in `$(cat /lib/modules/load-order); do insmod `$m 2>/dev/null; done
sleep 1
mkdir -p /base /seed
if mount -t ext4 -o ro /dev/vda /base 2>/dev/null; then echo "quickstart: base image mounted: `$(cat /base/etc/motd)"; fi
if mount -t iso9660 -o ro /dev/sr0 /seed 2>/dev/null; then echo "quickstart: seed says `$(grep local-hostname /seed/meta-data)"; fi
# The power button's event node appears asynchronously (devtmpfs) after its driver binds, on a slow host
# after the keyboard's: wait for it and listen there, never just on whatever exists yet.
buttons=""
for i in `$(seq 1 150); do
  for e in /sys/class/input/event*; do
    grep -qs "Power Button" "`$e/device/name" && [ -c "/dev/input/`${e##*/}" ] && buttons="`$buttons /dev/input/`${e##*/}"
  done
  [ -n "`$buttons" ] && break
  sleep 0.2
done
[ -n "`$buttons" ] || echo POWER-BUTTON-NOT-FOUND
for ev in `$buttons; do
  ( dd if=`$ev of=/dev/null bs=24 count=1 2>/dev/null; echo 'quickstart: power button, shutting down'; sync; poweroff -f ) &
done
echo $ReadyMarker
while true; do sleep 3600; done
"@
        $null = New-BusyboxInitramfs -Path "$root/boot/initrd.img-$($kernel.Version)" -InitScript $init -Kernel $kernel `
            -Module virtio_pci, virtio_blk, crc32c_generic, ext4, ata_piix, sr_mod, isofs, button, evdev
        $tarball = Join-Path $work 'rootfs.tar'
        & tar -C $root -cf $tarball .
        if ($LASTEXITCODE) { throw "tar failed ($LASTEXITCODE)" }
        $tarball
    }

    $base = Step 'Get-Qcow2Cache -Build { New-Qcow2Image -RootfsPath ... } (a miss: builds into the local store)' {
        Get-Qcow2Cache -Repository localhost/vmtools/quickstart -Tag tiny -Build {
            New-Qcow2Image -Path (Join-Path $work 'disk.qcow2') -RootfsPath $rootfs -RequireKernel -Force
        }
    }
    Write-Host "    $($base.Status) $($base.Reference)  $($base.Path)  ($([math]::Round($base.Size / 1MB, 1)) MiB)"

    $again = Step 'Get-Qcow2Cache again (now a hit, zero bytes)' { Get-Qcow2Cache -Repository localhost/vmtools/quickstart -Tag tiny }
    Write-Host "    $($again.Status) from $($again.Source), $($again.BytesDownloaded) bytes downloaded"

    $seed = Step 'New-CloudInitConfig | New-CloudInitIso (the seed)' {
        New-CloudInitConfig -Hostname $Name | New-CloudInitIso -Path (Join-Path $work "$Name-seed.iso") -Force
    }
    Write-Host "    $($seed.Path)  MAC $($seed.MacAddress)"

    $vm = Step "Start-FlightVm $Name -Wait -ReadyPattern $ReadyMarker" {
        # no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can fail and panic.
        $base | Start-FlightVm -Name $Name -CloudInit $seed -MemoryMB 256 -KernelArgs 'console=ttyS0 panic=-1 quiet no_timer_check' `
            -Wait -ReadyPattern $ReadyMarker -Timeout $TimeoutSeconds
    }
    Write-Host "    $($vm.Name) is $($vm.State) under $($vm.Accelerator) (the core picks KVM only where it can run a stock guest); console: $($vm.ConsoleLogPath)"
    Get-Content $vm.ConsoleLogPath | Where-Object { $_ -like 'quickstart:*' } | ForEach-Object { Write-Host "    guest> $_" }

    $handles = Step 'Get-VmHandles (what is true right now)' { Get-VmHandles $Name }
    $handles | Format-List Name, State, Alive, Pid, QmpSocketPath | Out-Host

    if ($KeepVm) {
        Write-Host "Left $Name running. Stop it with: Stop-FlightVm $Name; Remove-FlightVm $Name (VMTOOLS_HOME=$env:VMTOOLS_HOME)"
        $ownHome = $false
    } else {
        $stopped = Step 'Stop-FlightVm (ACPI power button) and Remove-FlightVm' {
            $s = Stop-FlightVm $Name -Timeout 60 -PassThru
            Remove-FlightVm $Name
            $s
        }
        Write-Host "    $Name was $($stopped.State), then removed"
    }
    Write-Host ('Quickstart finished in {0:n1} s' -f $clock.Elapsed.TotalSeconds) -ForegroundColor Green
} finally {
    if ($ownHome) {
        Get-FlightVm -ErrorAction Ignore | Remove-FlightVm -Force -ErrorAction Ignore
        Remove-Item -Recurse -Force $env:VMTOOLS_HOME -ErrorAction Ignore
    }
    # Run in an interactive session, the script leaves its environment as it found it.
    foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
}
