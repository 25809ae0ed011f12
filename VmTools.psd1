@{
    RootModule           = 'VmTools.dll'
    ModuleVersion        = '0.1.0'
    CompatiblePSEditions = @('Core')
    GUID                 = 'b3f7c1d2-5e44-4c8a-9d1e-7a2f6c0e9b41'
    Author               = 'VmTools contributors'
    Copyright            = '(c) VmTools contributors'
    Description          = 'Fast, disposable VMs for CI: a QCOW2 base image cache in an OCI registry, cloud-init seed ISOs, qemu VMs that survive their controller, and ZFS volumes.'
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @(
        'VmTools.Images.format.ps1xml'
        'VmTools.CloudInit.format.ps1xml'
        'VmTools.Volumes.format.ps1xml'
        'VmTools.Vms.format.ps1xml'
        'VmTools.Engine.format.ps1xml'
        'VmTools.KubeVirt.format.ps1xml'
    )
    TypesToProcess       = @()
    # Explicit lists: no wildcards, so import stays fast and the surface is deliberate.
    CmdletsToExport      = @(
        'Get-Qcow2Cache'
        'Save-Qcow2Cache'
        'Test-Qcow2Cache'
        'Get-Qcow2CacheStatistics'
        'Get-Qcow2CacheImage'
        'Remove-Qcow2CacheImage'
        'New-CloudInitConfig'
        'New-CloudInitIso'
        # KubeVirt
        'ConvertTo-KubeVirtVirtualMachine'
        # Volumes
        'Initialize-VmVolumePool'
        'Get-VmVolumePool'
        'New-VmVolume'
        'Set-VmVolume'
        'Get-VmVolume'
        'Remove-VmVolume'
        'New-VmVolumeSnapshot'
        'Get-VmVolumeSnapshot'
        'Restore-VmVolumeSnapshot'
        'Get-VmVolumeHave'
        'Send-VmVolumeSnapshot'
        'Receive-VmVolumeSnapshot'
        'Sync-VmVolume'
        'New-VmVolumeDisk'
        # VMs
        'Start-FlightVm'
        'Get-FlightVm'
        'Stop-FlightVm'
        'Remove-FlightVm'
        'Wait-FlightVm'
        'Invoke-FlightVmCommand'
        'Copy-FlightVmItem'
        'Get-VmHandles'
        'Get-FlightVmConsole'
        'Restart-FlightVm'
        'Suspend-FlightVm'
        'Resume-FlightVm'
        'Invoke-VmReconcile'
        # Base images
        'New-Qcow2Image'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('qemu', 'qcow2', 'oci', 'registry', 'cloud-init', 'zfs', 'ci', 'Linux')
            ProjectUri = 'https://example.invalid/vmtools'
        }
    }
}
