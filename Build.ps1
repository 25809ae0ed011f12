#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds VmTools into out/VmTools, runs the test suite, and (where installed) the Pester tests.
.EXAMPLE
    ./Build.ps1              # build + tests
.EXAMPLE
    ./Build.ps1 -Task Build  # just lay out the module at out/VmTools
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Pester', 'All')]
    [string] $Task = 'All',
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

if ($Task -in 'Build', 'All') {
    dotnet build VmTools.sln -c $Configuration
    if ($LASTEXITCODE) { throw "dotnet build failed ($LASTEXITCODE)" }
}
if ($Task -in 'Test', 'All') {
    dotnet test VmTools.sln -c $Configuration
    if ($LASTEXITCODE) { throw "dotnet test failed ($LASTEXITCODE)" }
}
if ($Task -in 'Pester', 'All') {
    if (Get-Module -ListAvailable Pester | Where-Object Version -ge '5.0') {
        $result = Invoke-Pester -Path tests/Pester -PassThru
        if ($result.FailedCount) { throw "$($result.FailedCount) Pester tests failed" }
    } else {
        Write-Warning 'Pester 5 is not installed: skipping tests/Pester (the same cases run in the hosted-engine tests).'
    }
}
