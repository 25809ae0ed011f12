#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The front door: builds VmTools into out/VmTools, runs the xunit suites and the Pester suite, or the quickstart.
.DESCRIPTION
    Runs under the repository's own pwsh (`dotnet tool restore` once, then `dotnet pwsh ./Build.ps1`).
    Pester 5.9.1 comes from NuGet (tests/Pester/PesterTools.csproj restores it into the NuGet cache); no
    other download is made. The Pester suite runs in a fresh pwsh and ends with one line
    "Pester totals - Failed: F, Passed: P, Skipped: S, Total: T" that .ci/run adds to the xunit totals.
.EXAMPLE
    dotnet pwsh ./Build.ps1                      # build, xunit, Pester (what README's test command runs)
.EXAMPLE
    dotnet pwsh ./Build.ps1 -Task Build          # just lay out the module at out/VmTools
.EXAMPLE
    dotnet pwsh ./Build.ps1 -Task Pester -NoBuild -PesterPath tests/Pester/Images.Tests.ps1
.EXAMPLE
    dotnet pwsh ./Build.ps1 -Task Quickstart     # build, then boot a tiny VM (examples/quickstart.ps1)
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Pester', 'Quickstart')]
    [string] $Task = 'Test',
    [string] $Configuration = 'Release',
    # Skip the build for Pester or Quickstart (the module in out/VmTools is used as it is).
    [switch] $NoBuild,
    # Pester files or folders to run (default: all of tests/Pester).
    [string[]] $PesterPath = @('tests/Pester')
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$PesterVersion = '5.9.1'

function Invoke-Native([string] $What) {
    # Runs the native command in $args; a non-zero exit is a failure of the named step.
    $exe, $rest = $args
    & $exe @rest
    if ($LASTEXITCODE) { throw "$What failed ($LASTEXITCODE)" }
}

function Get-NuGetPackageRoot {
    # Where restore put packages: NUGET_PACKAGES when set, else what NuGet reports (it honours NuGet.config).
    if ($env:NUGET_PACKAGES) { return $env:NUGET_PACKAGES }
    $line = dotnet nuget locals global-packages --list | Select-String -Pattern '^global-packages:\s*(.+)$' | Select-Object -First 1
    if (-not $line) { throw "'dotnet nuget locals global-packages --list' named no folder." }
    $line.Matches[0].Groups[1].Value.Trim()
}

function Get-PesterManifest {
    $manifest = Join-Path (Get-NuGetPackageRoot) "pester/$PesterVersion/tools/Pester.psd1"
    if (-not (Test-Path $manifest)) {
        Invoke-Native 'restoring Pester' dotnet restore tests/Pester/PesterTools.csproj --verbosity quiet
    }
    if (-not (Test-Path $manifest)) { throw "Pester $PesterVersion was restored but $manifest is missing." }
    $manifest
}

function Invoke-Build {
    Invoke-Native 'dotnet build' dotnet build VmTools.sln -c $Configuration
    $null = Get-PesterManifest
}

function Invoke-PesterSuite {
    # A fresh pwsh, as a user's CI step would have: nothing of this script's session leaks into the tests.
    $manifest = Get-PesterManifest
    # `-PesterPath a,b` reaches a script run with -File as one string: split it.
    $paths = ($PesterPath -split ',' | ForEach-Object { "'" + ((Resolve-Path $_).Path -replace "'", "''") + "'" }) -join ','
    $command = @"
`$ErrorActionPreference = 'Stop'
# CI logs are files: colour escapes would only garble them.
if ([Console]::IsOutputRedirected) { `$PSStyle.OutputRendering = 'PlainText' }
Import-Module '$($manifest -replace "'", "''")' -RequiredVersion $PesterVersion
`$config = New-PesterConfiguration
`$config.Run.Path = @($paths)
`$config.Run.PassThru = `$true
`$config.Output.Verbosity = 'Detailed'
`$r = Invoke-Pester -Configuration `$config
`$failed = `$r.FailedCount + `$r.FailedContainersCount
"Pester totals - Failed: `$failed, Passed: `$(`$r.PassedCount), Skipped: `$(`$r.SkippedCount), Total: `$(`$r.TotalCount + `$r.FailedContainersCount)"
if (`$r.Result -ne 'Passed') { exit 1 }
"@
    $exe = (Get-Process -Id $PID).Path
    # The dotnet tool's pwsh is `dotnet …/pwsh.dll`; a packaged pwsh is its own executable.
    $pwsh = if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { @($exe, (Join-Path $PSHOME 'pwsh.dll')) } else { @($exe) }
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -Command $command | Out-Host
    $LASTEXITCODE
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Quickstart' {
        if (-not $NoBuild) { Invoke-Build }
        & ./examples/quickstart.ps1
    }
    'Pester' {
        if (-not $NoBuild) { Invoke-Build }
        if (Invoke-PesterSuite) { throw 'Pester tests failed' }
    }
    'Test' {
        Invoke-Build
        # Both suites run to the end, so one failure does not hide the other's results.
        dotnet test VmTools.sln -c $Configuration --no-build
        $xunit = $LASTEXITCODE
        $pester = Invoke-PesterSuite
        if ($xunit -or $pester) { throw "tests failed (xunit exit $xunit, Pester exit $pester)" }
    }
}
