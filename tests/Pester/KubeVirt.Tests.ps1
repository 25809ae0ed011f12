#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# User-level cases for ConvertTo-KubeVirtVirtualMachine in a real pwsh. No registry and no cluster: cache
# entries are look-alike objects (as Vms.Tests.ps1 builds them) and the JSON is read back with ConvertFrom-Json.
# The schema proof (KubeVirt v1.9.0 OpenAPI) is in tests/VmTools.Core.Tests/KubeVirt; each case here has a
# hosted-engine twin in tests/VmTools.Tests/KubeVirt/ConvertToKubeVirtTests.cs (named above it).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $null = Import-VmToolsUnderTest
    $script:Digest = 'sha256:' + ('0f' * 32)
    $script:Entry = [pscustomobject]@{ Reference = 'registry.example:5000/bases/debian:12'; Tag = '12'; Digest = $Digest; Path = '/nowhere/disk.qcow2'; Size = 1; Status = 'Hit'; Source = 'Registry' }
    $script:Command = 'VmTools.Commands.ConvertToKubeVirtVirtualMachineCommand'
    $script:Work = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-kubevirt-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
    New-Item -ItemType Directory $Work | Out-Null
    $script:ConfigDir = Join-Path $Work 'vm-config'
    New-Item -ItemType Directory -Force (Join-Path $ConfigDir 'certs') | Out-Null
    Set-Content (Join-Path $ConfigDir 'config.yaml') "enrollment-service:`n  token: pester-agent-token`n"
    Set-Content (Join-Path $ConfigDir 'certs/client-enrollment.key') "-----BEGIN PRIVATE KEY-----`nPESTERKEY`n-----END PRIVATE KEY-----"
    Set-Content (Join-Path $ConfigDir 'ca.pem') "-----BEGIN CERTIFICATE-----`nPESTERCA`n-----END CERTIFICATE-----"
}

AfterAll {
    Remove-Item -Recurse -Force $Work -ErrorAction Ignore
}

Describe 'ConvertTo-KubeVirtVirtualMachine' {
    # Twin: ThreeConfigsPiped_WithACacheEntryAsImage_AsYaml_AreSixDocumentsWithoutInlineSecrets
    It 'turns a three-VM pool into a v1 List of Secrets and VirtualMachines pinned by digest, with no secret inline' {
        $password = ConvertTo-SecureString 'Pester-Pw-58' -AsPlainText -Force
        $json = 1..3 | ForEach-Object { New-CloudInitConfig -ConfigDirectory $ConfigDir -Hostname "web-$_" -UserName ops -Password $password -MacAddress "52:54:00:00:01:0$_" } |
            ConvertTo-KubeVirtVirtualMachine -Image $Entry -Namespace ci -MemoryMB 2048 -CpuCount 2 -Labels @{ pool = 'web' } -AsJson
        $list = $json | ConvertFrom-Json
        $list.apiVersion | Should -Be 'v1'
        $list.kind | Should -Be 'List'
        $list.items.kind | Should -Be @('Secret', 'VirtualMachine', 'Secret', 'VirtualMachine', 'Secret', 'VirtualMachine')
        $vms = $list.items | Where-Object kind -EQ 'VirtualMachine'
        $vms.metadata.name | Should -Be @('web-1', 'web-2', 'web-3')
        foreach ($vm in $vms) {
            $vm.apiVersion | Should -Be 'kubevirt.io/v1'
            $vm.metadata.namespace | Should -Be 'ci'
            $vm.metadata.labels.pool | Should -Be 'web'
            $vm.metadata.labels.'app.kubernetes.io/managed-by' | Should -Be 'vmtools'
            $vm.spec.runStrategy | Should -Be 'Always'
            $spec = $vm.spec.template.spec
            $spec.domain.cpu.cores | Should -Be 2
            $spec.domain.memory.guest | Should -Be '2048Mi'
            $spec.volumes[0].containerDisk.image | Should -Be "registry.example:5000/bases/debian@$Digest"
            $spec.volumes[0].containerDisk.path | Should -Be '/disk/disk.qcow2'
            $spec.volumes[1].cloudInitNoCloud.secretRef.name | Should -Be "$($vm.metadata.name)-cloudinit"
            $mac = $spec.domain.devices.interfaces[0].macAddress
            $mac | Should -Match '^52:54:00:00:01:0[123]$'
            $spec.volumes[1].cloudInitNoCloud.networkData | Should -Match ([regex]::Escape($mac))
            $text = $vm | ConvertTo-Json -Depth 20
            foreach ($secret in 'Pester-Pw-58', 'PESTERKEY', 'PESTERCA', 'pester-agent-token', 'PRIVATE KEY') { $text | Should -Not -Match $secret }
        }
        $userData = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($list.items[0].data.userdata))
        $userData | Should -Match 'Pester-Pw-58' -Because 'what the VM leaves out is in its Secret'
        $userData | Should -Match ([regex]::Escape([Convert]::ToBase64String([IO.File]::ReadAllBytes((Join-Path $ConfigDir 'certs/client-enrollment.key')))))
    }

    # Twin: CacheEntryPiped_WithAConfig_GivesSecretAndVirtualMachineObjects
    It 'pipes a cache entry with a seed into objects, shown by the format view' {
        $cfg = New-CloudInitConfig -Hostname probe -MacAddress 52:54:00:de:ad:02
        $out = $Entry | ConvertTo-KubeVirtVirtualMachine -CloudInit $cfg -RunStrategy Manual -NetworkBinding Bridge
        $out.Kind | Should -Be @('Secret', 'VirtualMachine')
        $out[1].MacAddress | Should -Be '52:54:00:de:ad:02'
        $out[1].Image | Should -Be "registry.example:5000/bases/debian@$Digest"
        $doc = $out[1].ToJsonObject().ToJsonString() | ConvertFrom-Json
        $doc.spec.runStrategy | Should -Be 'Manual'
        $doc.spec.template.spec.domain.devices.interfaces[0].PSObject.Properties.Name | Should -Contain 'bridge'
        ($out | Out-String -Width 200) | Should -Match 'VirtualMachine\s+default\s+probe'
    }

    # Twin: Yaml is read back by YamlDotNet in the core suite (Yaml_IsOneDocumentPerManifest_AndReadsBackAsTheSameDocuments)
    It 'writes YAML documents separated by --- for kubectl apply -f -' {
        $yaml = 'a', 'b' | ForEach-Object { New-CloudInitConfig -Hostname $_ } | ConvertTo-KubeVirtVirtualMachine -Image $Entry -AsYaml
        @($yaml).Count | Should -Be 1
        ($yaml -split "`n---`n").Count | Should -Be 4
        $yaml | Should -Match 'kind: "VirtualMachine"'
        $yaml | Should -Match 'secretRef:\s+name: "a-cloudinit"'
    }

    # Twin: EntryWithoutDigest_IsANonTerminatingErrorWithItsId_AndTheOthersStillConvert
    It 'refuses an entry without a digest with its ErrorId and converts the rest' {
        $noDigest = [pscustomobject]@{ Reference = 'registry.example/bases/local:1' }
        $out = $noDigest, $Entry | ConvertTo-KubeVirtVirtualMachine -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs.FullyQualifiedErrorId | Should -Be "KubeVirtImageDigestMissing,$Command"
        $out.Name | Should -Be 'debian'
        { $noDigest | ConvertTo-KubeVirtVirtualMachine -ErrorAction Stop } | Should -Throw -ErrorId "KubeVirtImageDigestMissing,$Command"
    }

    # Twin: TwoVmsWithOneName_TheSecondIsRefused
    It 'refuses a second VM with the same name' {
        $out = $Entry, $Entry | ConvertTo-KubeVirtVirtualMachine -Name twin -ErrorVariable errs -ErrorAction SilentlyContinue
        @($out).Count | Should -Be 1
        $errs.FullyQualifiedErrorId | Should -Be "KubeVirtNameDuplicate,$Command"
    }
}
