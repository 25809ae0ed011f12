<#
.SYNOPSIS
    Prepares an end-to-end run the way `make prepare-e2e-test` meant to: get (or build and publish) the
    generic base, make one seed per VM carrying the agent payload, start a pool of VMs from the base, and
    wait until each reports its agent configured.

.DESCRIPTION
    The base comes from the registry cache (commit tag, then latest); on a miss -Build runs and its result
    is published so the next run is a hit. Every VM gets its own seed ISO (its own cloud-init instance id
    and hostname) built from the VM_CONFIG_DIR layout: config.yaml, certs/, rpms/ or packages/, ca.pem,
    registry.conf. The guest's setup script prints VMTOOLS-SETUP: OK or VMTOOLS-SETUP: FAILED <step> on
    the serial console; this script fails unless every VM printed OK.

    Written with the core language and .NET calls only, so it also runs in minimal hosts.

.EXAMPLE
    ./examples/prepare-e2e.ps1 -Repository registry.example.com/ci/flightctl-device-qcow2 -Count 4

.EXAMPLE
    ./examples/prepare-e2e.ps1 -Build { New-Qcow2Image -Containerfile test/Containerfile-e2e-base -Path bin/output/qcow2/disk.qcow2 -Force }
#>
[CmdletBinding()]
param(
    # Repository of the cached base (default: quay.io/$env:REGISTRY_OWNER_TESTS/flightctl-device-qcow2).
    [string] $Repository,
    # Builds the base on a cache miss; must output the qcow2 (New-Qcow2Image's output works as is).
    [scriptblock] $Build,
    [pscredential] $Credential,
    [string] $ConfigDirectory = $(if ($env:VM_CONFIG_DIR) { $env:VM_CONFIG_DIR } else { 'bin/vm-config' }),
    [string] $OutputDirectory = $(if ($env:CLOUD_INIT_DIR) { $env:CLOUD_INIT_DIR } else { 'bin/cloud-init-data' }),
    [string] $RegistryAddress,
    [switch] $RegistryInsecure,
    [ValidateRange(1, 64)]
    [int] $Count = 1,
    # no_timer_check: a busy host under TCG can miss the kernel's IO-APIC timer check and panic (see README, VMs).
    [string] $KernelArgs = 'root=LABEL=rootfs rw console=ttyS0 no_timer_check',
    [int] $MemoryMB = 1024,
    # Public keys for a login user on every VM (Invoke-FlightVmCommand -User $UserName -KeyPath ...).
    [string[]] $SshAuthorizedKey = @(),
    [string] $UserName = 'ci',
    # Extra cloud-init runcmd entries (after the setup script), e.g. checks that print to the console.
    [string[]] $RunCommand = @(),
    [string] $ReadyPattern = 'VMTOOLS-SETUP: (OK|FAILED.*)',
    [int] $Timeout = 600,
    # Seconds for a VM's first console output: a guest silent that long is not booting (most often an
    # accelerator that cannot run it), so the script fails then rather than after -Timeout.
    [int] $ConsoleTimeout = 180
)

$ErrorActionPreference = 'Stop'
$clock = [Diagnostics.Stopwatch]::StartNew()

$cacheArgs = @{}
if ($Repository) { $cacheArgs.Repository = $Repository }
if ($Build) { $cacheArgs.Build = $Build }
if ($Credential) { $cacheArgs.Credential = $Credential }
$base = Get-Qcow2Cache @cacheArgs
if ($base.Status -eq 'Miss') { throw 'No cached base image for this commit (or latest), and no -Build to make one.' }
$PSCmdlet.WriteVerbose(("base: {0} {1} in {2:0.0}s" -f $base.Status, $base.Reference, $clock.Elapsed.TotalSeconds))

$seedDirectory = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($OutputDirectory)
$null = [IO.Directory]::CreateDirectory($seedDirectory)
$configArgs = @{ ConfigDirectory = $ConfigDirectory }
if ($RegistryAddress) { $configArgs.RegistryAddress = $RegistryAddress; $configArgs.RegistryInsecure = $RegistryInsecure }
if ($RunCommand.Count -gt 0) { $configArgs.RunCommand = $RunCommand }
if ($SshAuthorizedKey.Count -gt 0) { $configArgs.UserName = $UserName; $configArgs.SshAuthorizedKey = $SshAuthorizedKey }

$vms = foreach ($i in 1..$Count) {
    $hostname = "e2e-vm-$i"
    $seed = New-CloudInitConfig @configArgs -Hostname $hostname |
        New-CloudInitIso -Path ([IO.Path]::Combine($seedDirectory, "$hostname-cloudinit-data.iso")) -Force
    $base | Start-FlightVm -CloudInit $seed -KernelArgs $KernelArgs -MemoryMB $MemoryMB
}
$PSCmdlet.WriteVerbose(("{0} VM(s) started in {1:0.0}s" -f $Count, $clock.Elapsed.TotalSeconds))

$null = $vms | Wait-FlightVm -ReadyPattern '\S' -Timeout $ConsoleTimeout
$PSCmdlet.WriteVerbose(("all {0} VM(s) are writing to their consoles after {1:0.0}s" -f $Count, $clock.Elapsed.TotalSeconds))
$ready = $vms | Wait-FlightVm -ReadyPattern $ReadyPattern -Timeout $Timeout
foreach ($vm in $ready) {
    $console = [IO.File]::ReadAllText($vm.ConsoleLogPath)
    if ($console -notmatch 'VMTOOLS-SETUP: OK') {
        $failed = [regex]::Match($console, 'VMTOOLS-SETUP: FAILED[^\r\n]*').Value
        throw "VM $($vm.Name) did not configure its agent: $failed (console: $($vm.ConsoleLogPath))"
    }
}
$PSCmdlet.WriteVerbose(("all {0} VM(s) report the agent configured after {1:0.0}s" -f $Count, $clock.Elapsed.TotalSeconds))
$ready
