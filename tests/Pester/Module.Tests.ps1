#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The module as a pwsh user imports it, and a guard that this user-level suite keeps covering every
# cmdlet the manifest exports.

BeforeDiscovery {
    $script:Manifest = Import-PowerShellDataFile (Join-Path $PSScriptRoot '../../VmTools.psd1')
    $script:Exported = @($Manifest.CmdletsToExport)
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $script:Psd1 = Import-VmToolsUnderTest
    $script:Manifest = Import-PowerShellDataFile (Join-Path $PSScriptRoot '../../VmTools.psd1')
    # Every other test file's text, comments removed, so a name in a comment does not count as a use.
    $script:SuiteText = (Get-ChildItem $PSScriptRoot -Filter '*.Tests.ps1' | Where-Object Name -ne 'Module.Tests.ps1' |
        ForEach-Object { (Get-Content $_.FullName) -replace '#.*$', '' }) -join "`n"
}

Describe 'VmTools in a real pwsh' {
    It 'exports exactly the cmdlets the manifest lists' {
        $commands = Get-Command -Module VmTools
        @($commands.Name | Sort-Object) | Should -Be @($Manifest.CmdletsToExport | Sort-Object)
        $commands.CommandType | Select-Object -Unique | Should -Be 'Cmdlet'
    }

    It 'imports in a fresh pwsh process with its format views' {
        $r = Invoke-Pwsh "(Get-Module VmTools).Version.ToString(); (Get-FormatData -TypeName VmTools.Core.CloudInit.CloudInitIso).TypeNames"
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Be @($Manifest.ModuleVersion, 'VmTools.Core.CloudInit.CloudInitIso')
    }

    It 'has a Pester case that runs <_>' -ForEach $Exported {
        $SuiteText | Should -Match "(?<![\w-])$([regex]::Escape($_))(?![\w-])" -Because 'the Pester suite is the user-level suite and covers every cmdlet'
    }
}
