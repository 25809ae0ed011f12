#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# User-level cases for New-CloudInitConfig / New-CloudInitIso in a real pwsh. Each has a hosted-engine
# twin in tests/VmTools.Tests/CloudInit/CloudInitCmdletTests.cs (named in the comment above it).
# Needs isoinfo (genisoimage) as the independent reader of the image.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'RealComponents.psm1') -Force
    $null = Import-VmToolsUnderTest
    $script:IsoInfo = if (Find-Program isoinfo) { [pscustomobject]@{ UnavailableReason = $null } } else { [pscustomobject]@{ UnavailableReason = "'isoinfo' is not installed (apt-get install genisoimage)." } }
    function New-ConfigDir([string] $Parent, [switch] $NoCerts, [switch] $NoCa, [switch] $NoConfig) {
        $dir = Join-Path $Parent 'vm-config'
        New-Item -ItemType Directory -Force (Join-Path $dir 'certs'), (Join-Path $dir 'rpms') | Out-Null
        if (-not $NoConfig) { Set-Content (Join-Path $dir 'config.yaml') "enrollment-service: {}`n" }
        if (-not $NoCerts) {
            Set-Content (Join-Path $dir 'certs/client-enrollment.crt') 'CERT'
            Set-Content (Join-Path $dir 'certs/client-enrollment.key') 'KEY'
        }
        if (-not $NoCa) { Set-Content (Join-Path $dir 'ca.pem') 'CA' }
        Set-Content (Join-Path $dir 'rpms/flightctl-agent-0.9.0-1.x86_64.rpm') 'RPM'
        $dir
    }
}

Describe 'New-CloudInitConfig | New-CloudInitIso' {
    BeforeEach {
        $work = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-pester-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
        New-Item -ItemType Directory $work | Out-Null
        Push-Location $work
        $env:VM_CONFIG_DIR = $null; $env:CLOUD_INIT_DIR = $null; $env:SOURCE_DATE_EPOCH = $null
    }
    AfterEach {
        Pop-Location
        Remove-Item -Recurse -Force $work
        $env:VM_CONFIG_DIR = $null; $env:CLOUD_INIT_DIR = $null
    }

    # Twin: ConfigPipedToIso_WritesASeedImageReadersUnderstand
    It 'writes a seed image readers understand' {
        Assert-RealComponent $IsoInfo
        $dir = New-ConfigDir $work
        $iso = New-CloudInitConfig -ConfigDirectory $dir -Hostname vm1 -InstanceId i-1 | New-CloudInitIso -Path seed.iso
        $iso.VolumeLabel | Should -Be 'cidata'
        $iso.Size | Should -Be (Get-Item seed.iso).Length
        $iso.Files | Should -Contain '/flightctl-config/certs/client-enrollment.key'
        (& isoinfo -i seed.iso -R -x /meta-data) -join "`n" | Should -Be "instance-id: `"i-1`"`nlocal-hostname: `"vm1`""
    }

    # Twin: ThreeConfigsPiped_WithAHostnamePattern_WriteThreeSeeds_EachWithItsHostname
    It 'writes one seed per piped config from a -Path pattern, each holding its own hostname' {
        Assert-RealComponent $IsoInfo
        New-Item -ItemType Directory seeds | Out-Null
        $isos = 'a1', 'b2', 'c3' | ForEach-Object { New-CloudInitConfig -Hostname $_ } | New-CloudInitIso -Path 'seeds/{Hostname}.iso'
        $isos.Path | Should -Be @('a1', 'b2', 'c3' | ForEach-Object { Join-Path $work "seeds/$_.iso" })
        foreach ($host_ in 'a1', 'b2', 'c3') {
            (& isoinfo -i "seeds/$host_.iso" -R -x /meta-data) -join "`n" | Should -Match "local-hostname: `"$host_`""
        }
    }

    # Twin: TwoConfigsOnOnePatternPath_TheFirstIsWritten_TheSecondIsIsoPathCollision_TheThirdStillWritten
    It 'refuses a second config on the same expanded path with IsoPathCollision and writes the rest' {
        Assert-RealComponent $IsoInfo
        $isos = @((New-CloudInitConfig -Hostname same -InstanceId first), (New-CloudInitConfig -Hostname same -InstanceId second), (New-CloudInitConfig -Hostname other -InstanceId third)) |
            New-CloudInitIso -Path '{Hostname}.iso' -ErrorVariable failed -ErrorAction SilentlyContinue
        @($isos).Count | Should -Be 2
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'IsoPathCollision,VmTools.Commands.NewCloudInitIsoCommand'
        (& isoinfo -i same.iso -R -x /meta-data) -join "`n" | Should -Match 'instance-id: "first"'
    }

    # Twin: FixedPath_WithTwoConfigs_WritesTheFirst_AndRefusesTheSecondWithIsoPathNeedsPlaceholder_EvenWithForce
    It 'writes the first of two configs to a fixed -Path and refuses the second with IsoPathNeedsPlaceholder' {
        $isos = @((New-CloudInitConfig -InstanceId one), (New-CloudInitConfig -InstanceId two)) |
            New-CloudInitIso -Path seed.iso -Force -ErrorVariable failed -ErrorAction SilentlyContinue
        @($isos).Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'IsoPathNeedsPlaceholder,VmTools.Commands.NewCloudInitIsoCommand'
    }

    # Twin: UnknownPlaceholder_IsIsoPathPlaceholderUnknown_AndWritesNothing
    It 'refuses an unknown placeholder with IsoPathPlaceholderUnknown' {
        { New-CloudInitConfig -Hostname u | New-CloudInitIso -Path '{Host}.iso' -ErrorAction Stop } |
            Should -Throw -ErrorId 'IsoPathPlaceholderUnknown,VmTools.Commands.NewCloudInitIsoCommand'
        Get-ChildItem | Should -BeNullOrEmpty
    }

    # Twin: ConfigFromVmConfigDirEnvironment_WritesSeedToCloudInitDir
    It 'reads VM_CONFIG_DIR and writes the seed to CLOUD_INIT_DIR' {
        $env:VM_CONFIG_DIR = New-ConfigDir $work
        $env:CLOUD_INIT_DIR = Join-Path $work 'bin/cloud-init-data'
        $cfg = New-CloudInitConfig -RegistryAddress 10.0.2.2:5000 -RegistryInsecure
        $cfg.Agent.ServiceName | Should -Be 'flightctl-agent'
        Join-Path $env:CLOUD_INIT_DIR 'user-data' | Should -Exist
        Get-Content -Raw (Join-Path $env:CLOUD_INIT_DIR 'flightctl-config/registry.conf') | Should -Be "[[registry]]`nlocation = `"10.0.2.2:5000`"`ninsecure = true`n"
    }

    # Twin: SourceDirectory_ImagesAnExistingSeed
    It 'images an existing seed directory' {
        New-CloudInitConfig -Hostname plain -OutputDirectory seed | Out-Null
        (New-CloudInitIso -SourceDirectory seed -Path plain.iso).Files | Should -Be @('/meta-data', '/network-config', '/user-data')
    }

    # Twin: WhatIf_WritesNothing
    It 'writes nothing with -WhatIf' {
        New-CloudInitConfig -Hostname w -OutputDirectory seed -WhatIf | New-CloudInitIso -Path w.iso -WhatIf
        'seed' | Should -Not -Exist
        'w.iso' | Should -Not -Exist
    }

    # Twin: OutputDirectoryDot_InAFolderWithUserFiles_IsRefused_AndEveryFileSurvives
    It 'refuses to write a seed into a folder holding user files, and keeps them' {
        Set-Content thesis.txt 'four years'
        New-Item -ItemType Directory src | Out-Null
        Set-Content src/main.c 'int main;'
        { New-CloudInitConfig -Hostname x -OutputDirectory . -ErrorAction Stop } |
            Should -Throw -ErrorId 'CloudInitOutputNotEmpty,VmTools.Commands.NewCloudInitConfigCommand'
        @(Get-ChildItem -Force -Name) | Sort-Object | Should -Be @('src', 'thesis.txt')
        Get-Content thesis.txt | Should -Be 'four years'
        'src/main.c' | Should -Exist
    }

    # Twin: CloudInitDirPointingAtANonEmptyFolder_IsRefused_AndTheFolderIsUntouched
    It 'refuses a non-empty CLOUD_INIT_DIR' {
        New-Item -ItemType Directory home | Out-Null
        Set-Content home/.profile 'PATH=$PATH'
        $env:CLOUD_INIT_DIR = Join-Path $work 'home'
        $err = { New-CloudInitConfig -Hostname x -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'CloudInitOutputNotEmpty,VmTools.Commands.NewCloudInitConfigCommand'
        $err.Exception.Message | Should -BeLike '*.profile*'
        @(Get-ChildItem -Force -Name home) | Should -Be @('.profile')
    }

    # Twin: Force_WritesSeedFilesBesideUnrelatedFiles_WhichSurvive_AndShouldProcessNamesThem
    It 'writes seed files beside unrelated files with -Force, and keeps them' {
        Set-Content thesis.txt 'four years'
        New-CloudInitConfig -Hostname forced -OutputDirectory . -Force | Out-Null
        Get-Content thesis.txt | Should -Be 'four years'
        Get-Content -Raw meta-data | Should -BeLike '*"forced"*'
    }

    # Twin: PriorSeed_IsReplaced_AndEmptyFolder_IsUsed
    It 'uses an empty folder and replaces the seed it wrote there' {
        New-Item -ItemType Directory empty | Out-Null
        New-CloudInitConfig -Hostname first -OutputDirectory empty | Out-Null
        New-CloudInitConfig -Hostname second -OutputDirectory empty | Out-Null
        Get-Content -Raw empty/meta-data | Should -BeLike '*"second"*'
        'empty/.vmtools-seed' | Should -Exist
    }

    # Twin: ExistingImage_NeedsForce
    It 'replaces an existing image only with -Force' {
        Set-Content seed.iso 'old'
        { New-CloudInitConfig | New-CloudInitIso -Path seed.iso -ErrorAction Stop } |
            Should -Throw -ErrorId 'IsoOutputExists,VmTools.Commands.NewCloudInitIsoCommand'
        New-CloudInitConfig | New-CloudInitIso -Path seed.iso -Force | Out-Null
        Get-Content -Raw seed.iso | Should -Not -Be "old`n"
    }

    # Twin: MissingRequiredInput_FailsWithItsErrorId_AndWritesNoSeed
    It 'fails with <ErrorId> when <Missing> is missing' -TestCases @(
        @{ Missing = 'certs'; ErrorId = 'CloudInitCertificatesNotFound' }
        @{ Missing = 'ca'; ErrorId = 'CloudInitCaCertificateNotFound' }
        @{ Missing = 'config'; ErrorId = 'CloudInitAgentConfigNotFound' }
    ) {
        $dir = New-ConfigDir $work -NoCerts:($Missing -eq 'certs') -NoCa:($Missing -eq 'ca') -NoConfig:($Missing -eq 'config')
        { New-CloudInitConfig -ConfigDirectory $dir -OutputDirectory seed -ErrorAction Stop } |
            Should -Throw -ErrorId "$ErrorId,VmTools.Commands.NewCloudInitConfigCommand"
        'seed' | Should -Not -Exist
    }

    # Twin: SeedDirectoryWithoutUserData_IsCloudInitSeedIncomplete
    It 'refuses a seed directory without user-data' {
        New-Item -ItemType Directory half | Out-Null
        Set-Content half/meta-data 'instance-id: x'
        { New-CloudInitIso -SourceDirectory half -Path half.iso -ErrorAction Stop } |
            Should -Throw -ErrorId 'CloudInitSeedIncomplete,VmTools.Commands.NewCloudInitIsoCommand'
        'half.iso' | Should -Not -Exist
    }

    # Twin: NameJolietCannotHold_IsIsoFileNameInvalid_AndNoImage
    It 'refuses a name Joliet cannot hold' {
        New-CloudInitConfig -OutputDirectory seed | Out-Null
        Set-Content (Join-Path seed ('n' * 65)) 'x'
        { New-CloudInitIso -SourceDirectory seed -Path bad.iso -ErrorAction Stop } |
            Should -Throw -ErrorId 'IsoFileNameInvalid,VmTools.Commands.NewCloudInitIsoCommand'
        'bad.iso' | Should -Not -Exist
    }

    # Twin: LinkOutOfTheSeed_IsIsoPathEscapesRoot
    It 'refuses a link that leaves the seed directory' {
        New-CloudInitConfig -OutputDirectory seed | Out-Null
        Set-Content secret 'x'
        New-Item -ItemType SymbolicLink -Path seed/leak -Target ../secret | Out-Null
        { New-CloudInitIso -SourceDirectory seed -Path leak.iso -ErrorAction Stop } |
            Should -Throw -ErrorId 'IsoPathEscapesRoot,VmTools.Commands.NewCloudInitIsoCommand'
        'leak.iso' | Should -Not -Exist
    }

    # Twin: Password_NeverAppearsInAnyStream
    It 'never shows a plain password' {
        $p = ConvertTo-SecureString 'Hunter2-Secret' -AsPlainText -Force
        # Verbose merged into output (4>&1) would be piped on as input: keep each cmdlet's streams apart.
        $configStreams = New-CloudInitConfig -UserName ci -Password $p -OutputDirectory seed -Verbose 4>&1
        $config = $configStreams | Where-Object { $_ -isnot [Management.Automation.VerboseRecord] }
        $isoStreams = $config | New-CloudInitIso -Path p.iso -Verbose 4>&1
        @($configStreams) + @($isoStreams) | Where-Object { $_ -is [Management.Automation.VerboseRecord] } | Should -Not -BeNullOrEmpty
        @($configStreams) + @($isoStreams) + @($config | Format-List * | Out-String) | Out-String | Should -Not -Match 'Hunter2'
        Get-Content -Raw seed/user-data | Should -Match 'plain_text_passwd: "Hunter2-Secret"'
        # The mode as flags, not as text: the enum's text lists flags in value order, not in the order written here.
        (Get-Item p.iso).UnixFileMode | Should -Be ([IO.UnixFileMode]::UserRead -bor [IO.UnixFileMode]::UserWrite)
    }

    # Twin: BadHostname_IsCloudInitHostnameInvalid
    It 'refuses a bad hostname' {
        { New-CloudInitConfig -Hostname 'not a host' -ErrorAction Stop } |
            Should -Throw -ErrorId 'CloudInitHostnameInvalid,VmTools.Commands.NewCloudInitConfigCommand'
    }

    # Twin: SameConfigTwice_GivesIdenticalImages
    It 'writes identical bytes for the same config' {
        $c = New-CloudInitConfig -InstanceId same -Hostname same
        $c | New-CloudInitIso -Path a.iso | Out-Null
        $c | New-CloudInitIso -Path b.iso | Out-Null
        (Get-FileHash a.iso).Hash | Should -Be (Get-FileHash b.iso).Hash
    }

    # Twin: Completers_OfferKnownValues
    It 'completes labels and the agent service' {
        (TabExpansion2 'New-CloudInitIso -VolumeLabel ').CompletionMatches.CompletionText | Should -Contain 'cidata'
        (TabExpansion2 'New-CloudInitConfig -AgentServiceName fl').CompletionMatches.CompletionText | Should -Be @('flightctl-agent')
    }

    # Twin: FormatViews_AreShippedAndNameRealTypesAndProperties
    It 'shows the image as a table' {
        $text = New-CloudInitConfig | New-CloudInitIso -Path t.iso | Out-String
        $text | Should -Match 'VolumeLabel\s+Files\s+Size\s+Path'
        $text | Should -Match 'cidata'
    }
}
