#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# What a user sees from Get-Help in a real pwsh: every exported cmdlet documents exactly the
# parameters it has (the help is compiled from the cmdlets at build time: build/VmTools.HelpBuilder),
# each with a description, SYNTAX per parameter set, an example and related links; and the
# conceptual topic about_VmTools is found.

BeforeDiscovery {
    $manifest = Join-Path $PSScriptRoot '../../out/VmTools/VmTools.psd1'
    # Discovery needs the cmdlet list to generate one block per cmdlet.
    $script:cmdletNames = (Import-PowerShellDataFile $manifest).CmdletsToExport
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../out/VmTools/VmTools.psd1') -Force
    # What Get-Command lists beyond the cmdlet's own: -Verbose, -ErrorAction, ... (WhatIf and
    # Confirm are not among them: help documents those like any other parameter).
    $script:commonParameters = [System.Management.Automation.PSCmdlet]::CommonParameters
    $script:manifestCmdlets = (Import-PowerShellDataFile (Join-Path $PSScriptRoot '../../out/VmTools/VmTools.psd1')).CmdletsToExport

    function Get-OwnParameter([string] $Name) {
        (Get-Command $Name).Parameters.Values | Where-Object Name -NotIn $script:commonParameters
    }
}

Describe 'The module exports what its manifest lists' {
    It 'exports every cmdlet the manifest names, and only those' {
        $exported = (Get-Module VmTools).ExportedCmdlets.Keys | Sort-Object
        $exported | Should -Be ($script:manifestCmdlets | Sort-Object)
    }
}

Describe 'Get-Help <_>' -ForEach $cmdletNames {
    BeforeAll {
        $name = $_
        $help = Get-Help $name -Full
        $own = Get-OwnParameter $name
        $helpParameters = @($help.parameters.parameter)
        $shown = Get-Help $name | Out-String -Width 400
    }

    It 'is the compiled MAML help, not the auto-generated stub' {
        # Without help XML, Get-Help synthesizes a stub whose synopsis is the syntax line.
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -BeLike "*$name *[<CommonParameters>]*"
        $help.description.Text -join ' ' | Should -Not -BeNullOrEmpty
    }

    It 'shows SYNTAX' {
        $shown | Should -Match "(?ms)^SYNTAX\s*\r?\n\s+$([regex]::Escape($name)) "
        @($help.syntax.syntaxItem).Count | Should -BeGreaterThan 0
    }

    It 'has one SYNTAX line per parameter set, each with the parameters of that set' {
        $sets = (Get-Command $name).ParameterSets
        @($help.syntax.syntaxItem).Count | Should -Be $sets.Count
        $expected = $sets | ForEach-Object { (@($_.Parameters.Name | Where-Object { $_ -notin $script:commonParameters }) | Sort-Object) -join ',' } | Sort-Object
        $actual = $help.syntax.syntaxItem | ForEach-Object { (@($_.parameter.name) | Sort-Object) -join ',' } | Sort-Object
        $actual | Should -Be $expected
    }

    It 'marks in SYNTAX the parameters each set requires' {
        foreach ($set in (Get-Command $name).ParameterSets) {
            $names = @($set.Parameters.Name | Where-Object { $_ -notin $script:commonParameters }) | Sort-Object
            $item = $help.syntax.syntaxItem | Where-Object { ((@($_.parameter.name) | Sort-Object) -join ',') -eq ($names -join ',') } | Select-Object -First 1
            foreach ($parameter in $set.Parameters | Where-Object Name -NotIn $script:commonParameters) {
                $documented = $item.parameter | Where-Object name -EQ $parameter.Name
                "$($parameter.Name): $($documented.required)" | Should -Be "$($parameter.Name): $($parameter.IsMandatory.ToString().ToLowerInvariant())"
                $position = if ($parameter.Position -ge 0) { "$($parameter.Position)" } else { 'named' }
                "$($parameter.Name): $($documented.position)" | Should -Be "$($parameter.Name): $position"
            }
        }
    }

    It 'documents every parameter the cmdlet has, and none it lacks' {
        ($helpParameters.name | Sort-Object) | Should -Be (@($own.Name) | Sort-Object)
    }

    It 'describes every parameter' {
        $undescribed = $helpParameters | Where-Object { -not (($_.description.Text -join '').Trim()) } | ForEach-Object name
        $undescribed | Should -BeNullOrEmpty
    }

    It 'gives each parameter its type, pipeline input and wildcard support as the cmdlet declares them' {
        foreach ($parameter in $own) {
            $documented = $helpParameters | Where-Object name -EQ $parameter.Name
            $type = $parameter.ParameterType
            if ([Nullable]::GetUnderlyingType($type)) { $type = [Nullable]::GetUnderlyingType($type) }
            "$($parameter.Name): $($documented.type.name)" | Should -Be "$($parameter.Name): $($type.FullName)"

            $byValue = @($parameter.ParameterSets.Values | Where-Object ValueFromPipeline).Count -gt 0
            $byName = @($parameter.ParameterSets.Values | Where-Object ValueFromPipelineByPropertyName).Count -gt 0
            "$($parameter.Name): $($documented.pipelineInput -like 'True*')" | Should -Be "$($parameter.Name): $($byValue -or $byName)"
            "$($parameter.Name): $($documented.pipelineInput -like '*ByValue*')" | Should -Be "$($parameter.Name): $byValue"
            "$($parameter.Name): $($documented.pipelineInput -like '*ByPropertyName*')" | Should -Be "$($parameter.Name): $byName"

            $wildcards = @($parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] }).Count -gt 0
            "$($parameter.Name): $($documented.globbing)" | Should -Be "$($parameter.Name): $($wildcards.ToString().ToLowerInvariant())"
        }
    }

    It 'has at least one example with code' {
        @($help.examples.example | Where-Object { $_.code.Trim() }).Count | Should -BeGreaterThan 0
    }

    It 'links to the other cmdlets of its area and to about_VmTools' {
        $links = @($help.relatedLinks.navigationLink.linkText)
        $links | Should -Contain 'about_VmTools'
        @($links | Where-Object { $_ -ne 'about_VmTools' }).Count | Should -BeGreaterThan 0
        foreach ($link in $links | Where-Object { $_ -ne 'about_VmTools' }) {
            Get-Command $link -Module VmTools -ErrorAction SilentlyContinue | Should -Not -BeNullOrEmpty -Because "$link is linked from $name"
        }
        $shown | Should -Match '(?ms)^RELATED LINKS\s*\r?\n\s+\S'
    }
}

Describe 'about_VmTools' {
    BeforeAll {
        $about = Get-Help about_VmTools | Out-String -Width 200
    }

    It 'is found by Get-Help' {
        $about | Should -Match 'about_VmTools'
        $about | Should -Match 'SHORT DESCRIPTION'
    }

    It 'explains the state layout' {
        $about | Should -Match 'VMTOOLS_HOME'
        $about | Should -Match 'handles\.json'
        $about | Should -Match 'vmtools\.db'
    }

    It 'names the environment variables the module reads' {
        foreach ($variable in 'VMTOOLS_HOME', 'REGISTRY_CACHE', 'QCOW2_CACHE_TAG', 'VM_CONFIG_DIR', 'CLOUD_INIT_DIR',
            'VMTOOLS_ACCELERATOR', 'VMTOOLS_CERTS_D', 'REGISTRY_AUTH_FILE', 'SOURCE_DATE_EPOCH', 'DOCKER_HOST') {
            $about | Should -Match "\b$variable\b"
        }
    }

    It 'lists the ErrorIds a user meets first' {
        foreach ($id in 'VmNotFound', 'RegistryManifestNotFound', 'IsoOutputExists', 'VolumeNotFound') {
            $about | Should -Match "\b$id\b"
        }
    }
}
