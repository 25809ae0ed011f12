# A tiny bootable guest made from Debian's own packages, for the quickstart and the Pester suite:
# the kernel of `linux-image-<abi>-amd64` (downloaded with apt-get, never installed) unpacked to an
# uncompressed ELF vmlinux plus its module tree, and a busybox-static initramfs around an /init script.
# No root is needed: the initramfs is written as a newc cpio here, device nodes included.
#
# The kernel cache has the layout and lock that tests/Shared/TestGuest.cs uses (<root>/<abi>/vmlinux,
# <root>/<abi>/lib/modules/<abi>, a `ready` file, `<root>/.build.lock` held while building), so the xunit
# suites and the Pester suite share one download when they share a root.

Set-StrictMode -Version 3.0

function Get-DebianGuestKernel {
    <#
    .SYNOPSIS
        The newest unpacked Debian kernel under CacheRoot, downloading and unpacking it on first use (~10 s).
    .OUTPUTS
        An object with Version, VmlinuxPath and ModulesDirectory.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)] [string] $CacheRoot)

    $null = New-Item -ItemType Directory -Force $CacheRoot
    $lock = Lock-File (Join-Path $CacheRoot '.build.lock') -Timeout ([timespan]::FromMinutes(10))
    try {
        $ready = Get-ChildItem -Directory $CacheRoot |
            Where-Object { Test-Path (Join-Path $_.FullName 'ready') } |
            Sort-Object { (Get-Item (Join-Path $_.FullName 'ready')).LastWriteTimeUtc } -Descending |
            Select-Object -First 1
        if ($ready) { return New-KernelDescription $ready.FullName $ready.Name }

        foreach ($tool in 'apt-get', 'apt-cache', 'dpkg-deb') {
            if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { throw "'$tool' is not installed: the guest kernel comes from Debian's linux-image package." }
        }
        $version = Get-DebianKernelVersion
        $work = Join-Path $CacheRoot ".$version.partial-$PID"
        Remove-Item -Recurse -Force $work -ErrorAction Ignore
        $null = New-Item -ItemType Directory $work
        try {
            $package = "linux-image-$version"
            Push-Location $work
            try { $out = & apt-get download $package 2>&1 } finally { Pop-Location }
            if ($LASTEXITCODE) { throw "apt-get download $package failed ($LASTEXITCODE): $out" }
            $deb = Get-ChildItem $work -Filter "${package}_*.deb" | Select-Object -First 1
            if (-not $deb) { throw "apt-get download $package left no .deb in $work." }
            $unpacked = Join-Path $work 'unpacked'
            $out = & dpkg-deb -x $deb.FullName $unpacked 2>&1
            if ($LASTEXITCODE) { throw "dpkg-deb -x $($deb.Name) failed: $out" }
            Expand-Vmlinux -BzImage (Join-Path $unpacked "boot/vmlinuz-$version") -Destination (Join-Path $work 'vmlinux')
            $null = New-Item -ItemType Directory (Join-Path $work 'lib/modules')
            Move-Item (Join-Path $unpacked "lib/modules/$version") (Join-Path $work "lib/modules/$version")
            Remove-Item -Recurse -Force $unpacked, $deb.FullName
            Set-Content (Join-Path $work 'ready') $version
            $final = Join-Path $CacheRoot $version
            Remove-Item -Recurse -Force $final -ErrorAction Ignore
            Move-Item $work $final
            New-KernelDescription $final $version
        } catch {
            Remove-Item -Recurse -Force $work -ErrorAction Ignore
            throw
        }
    } finally {
        $lock.Dispose()
    }
}

function New-BusyboxInitramfs {
    <#
    .SYNOPSIS
        Writes a gzip'd newc cpio: busybox-static with every applet linked, /init = InitScript, the named
        kernel modules and their dependencies (load order in /lib/modules/load-order), /dev/console, and
        ExtraFile: a hashtable of path in the initramfs -> host file copied there, keeping its mode.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] [string] $Path,
        [Parameter(Mandatory)] [string] $InitScript,
        [Parameter(Mandatory)] $Kernel,
        [string[]] $Module = @(),
        [hashtable] $ExtraFile = @{}
    )

    $busybox = (Get-Command busybox -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source
    if (-not $busybox) { throw "'busybox' is not installed (apt-get install busybox-static)." }
    $applets = & $busybox --list-full
    if ($LASTEXITCODE) { throw "'$busybox --list-full' failed: is it busybox-static?" }

    $cpio = [CpioWriter]::new()
    foreach ($dir in 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'tmp', 'run', 'mnt', 'etc', 'root', 'lib/modules') { $cpio.Directory($dir) }
    $cpio.CharDevice('dev/console', 5, 1)
    $cpio.CharDevice('dev/null', 1, 3)
    $cpio.CharDevice('dev/ttyS0', 4, 64)
    $cpio.File('bin/busybox', [IO.File]::ReadAllBytes($busybox), 0x1ED)
    foreach ($applet in $applets) { if ($applet -and $applet -ne 'bin/busybox') { $cpio.Symlink($applet.Trim(), '/bin/busybox') } }
    $cpio.File('init', [Text.Encoding]::UTF8.GetBytes(($InitScript -replace "`r`n", "`n")), 0x1ED)

    $ordered = Resolve-KernelModule -Kernel $Kernel -Name $Module
    if ($ordered) {
        $guestRoot = "lib/modules/$($Kernel.Version)"
        foreach ($relative in $ordered) { $cpio.File("$guestRoot/$relative", [IO.File]::ReadAllBytes((Join-Path $Kernel.ModulesDirectory $relative)), 0x1A4) }
        $cpio.File('lib/modules/load-order', [Text.Encoding]::ASCII.GetBytes((($ordered | ForEach-Object { "/$guestRoot/$_`n" }) -join '')), 0x1A4)
    }
    foreach ($guestPath in $ExtraFile.Keys) {
        $hostPath = $ExtraFile[$guestPath]
        $cpio.File($guestPath.TrimStart('/'), [IO.File]::ReadAllBytes($hostPath), ([int] [IO.File]::GetUnixFileMode($hostPath)) -band 0xFFF)
    }

    $full = [IO.Path]::GetFullPath($Path)
    $null = New-Item -ItemType Directory -Force ([IO.Path]::GetDirectoryName($full))
    $temp = "$full.tmp-$PID"
    $file = [IO.File]::Create($temp)
    try {
        $gz = [IO.Compression.GZipStream]::new($file, [IO.Compression.CompressionLevel]::Fastest)
        try { $cpio.WriteTo($gz) } finally { $gz.Dispose() }
    } finally { $file.Dispose() }
    Move-Item -Force $temp $full
    $full
}

function Expand-Vmlinux {
    <#
    .SYNOPSIS
        Pulls the ELF vmlinux out of a bzImage: it boots via PVH, skipping the slow self-decompression under TCG.
    .DESCRIPTION
        The compressed payload is found by the boot-protocol header (setup_sects at 0x1F1, payload_offset and
        payload_length at 0x248, relative to the protected-mode code); the build appends a 4-byte size to it.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)] [string] $BzImage, [Parameter(Mandatory)] [string] $Destination)

    $image = [IO.File]::ReadAllBytes($BzImage)
    if ($image.Length -lt 0x260 -or [Text.Encoding]::ASCII.GetString($image, 0x202, 4) -ne 'HdrS') { throw "$BzImage is not a bzImage (no HdrS header)." }
    $setupSectors = if ($image[0x1F1] -eq 0) { 4 } else { $image[0x1F1] }
    $start = ($setupSectors + 1) * 512 + [BitConverter]::ToInt32($image, 0x248)
    $length = [BitConverter]::ToInt32($image, 0x24C)
    $payload = [byte[]]::new($length - 4)
    [Array]::Copy($image, $start, $payload, 0, $payload.Length)
    $magic = [BitConverter]::ToString($payload, 0, 4)
    $temp = "$Destination.tmp-$PID"
    if ($magic -eq 'FD-37-7A-58') { Invoke-Decompressor 'xz' $payload $temp }
    elseif ($magic -eq '28-B5-2F-FD') { Invoke-Decompressor 'zstd' $payload $temp }
    elseif ($magic.StartsWith('1F-8B')) {
        $in = [IO.Compression.GZipStream]::new([IO.MemoryStream]::new($payload), [IO.Compression.CompressionMode]::Decompress)
        $out = [IO.File]::Create($temp)
        try { $in.CopyTo($out) } finally { $out.Dispose(); $in.Dispose() }
    } else { throw "${BzImage}: unsupported kernel compression (payload starts $magic)." }

    $head = [byte[]]::new(4)
    $check = [IO.File]::OpenRead($temp)
    try { $null = $check.Read($head, 0, 4) } finally { $check.Dispose() }
    if ([Text.Encoding]::ASCII.GetString($head, 1, 3) -ne 'ELF' -or $head[0] -ne 0x7F) { throw "${BzImage}: the decompressed payload is not an ELF vmlinux." }
    Move-Item -Force $temp $Destination
}

function Resolve-KernelModule {
    # The modules named and everything they depend on, dependencies first, as paths relative to the module root.
    param($Kernel, [string[]] $Name)
    if (-not $Name) { return @() }
    $index = @{}
    foreach ($ko in Get-ChildItem -Recurse -File -Filter '*.ko' (Join-Path $Kernel.ModulesDirectory 'kernel')) {
        $index[($ko.BaseName -replace '-', '_')] = [IO.Path]::GetRelativePath($Kernel.ModulesDirectory, $ko.FullName)
    }
    $builtin = @{}
    foreach ($line in Get-Content (Join-Path $Kernel.ModulesDirectory 'modules.builtin')) { $builtin[([IO.Path]::GetFileNameWithoutExtension($line) -replace '-', '_')] = $true }
    $ordered = [Collections.Generic.List[string]]::new()
    $visit = {
        param([string] $module)
        $module = $module -replace '-', '_'
        if (-not $index.ContainsKey($module)) {
            if ($builtin.ContainsKey($module)) { return }
            throw "Kernel $($Kernel.Version) has no module '$module'."
        }
        $relative = $index[$module]
        if ($ordered.Contains($relative)) { return }
        foreach ($dependency in Get-ModuleDependency (Join-Path $Kernel.ModulesDirectory $relative)) { & $visit $dependency }
        $ordered.Add($relative)
    }
    foreach ($n in $Name) { & $visit $n }
    $ordered.ToArray()
}

function Get-ModuleDependency([string] $KoPath) {
    # The `depends=` string of the module's .modinfo (what depmod reads): no kmod tools needed on the host.
    $text = [Text.Encoding]::Latin1.GetString([IO.File]::ReadAllBytes($KoPath))
    $at = $text.IndexOf("`0depends=", [StringComparison]::Ordinal)
    if ($at -lt 0) { return @() }
    $start = $at + "`0depends=".Length
    $list = $text.Substring($start, $text.IndexOf([char] 0, $start) - $start)   # a char search: culture-aware string search ignores NUL
    @($list -split ',' | Where-Object { $_ })
}

function Get-DebianKernelVersion {
    # The ABI the linux-image-amd64 metapackage points at, e.g. 6.1.0-56-amd64.
    $out = & apt-cache depends linux-image-amd64 2>&1
    if ($LASTEXITCODE) { throw "apt-cache depends linux-image-amd64 failed: $out" }
    foreach ($line in $out) {
        if ("$line".Trim() -match '^Depends: linux-image-(\d\S*-amd64)$') { return $Matches[1] }
    }
    throw 'apt-cache depends linux-image-amd64 names no versioned kernel package (run apt-get update?).'
}

function Invoke-Decompressor([string] $Tool, [byte[]] $Payload, [string] $Destination) {
    if (-not (Get-Command $Tool -CommandType Application -ErrorAction Ignore)) { throw "'$Tool' is not installed (apt-get install $(if ($Tool -eq 'xz') { 'xz-utils' } else { $Tool }))." }
    $psi = [Diagnostics.ProcessStartInfo]::new($Tool)
    $psi.ArgumentList.Add('-dc')
    $psi.RedirectStandardInput = $true; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
    $p = [Diagnostics.Process]::Start($psi)
    $stderr = $p.StandardError.ReadToEndAsync()
    $out = [IO.File]::Create($Destination)
    try {
        $copy = $p.StandardOutput.BaseStream.CopyToAsync($out)
        $p.StandardInput.BaseStream.Write($Payload, 0, $Payload.Length)
        $p.StandardInput.Close()
        $null = $copy.GetAwaiter().GetResult()
        $p.WaitForExit()
    } finally { $out.Dispose() }
    if ($p.ExitCode) { throw "$Tool -dc of the kernel payload failed: $($stderr.Result)" }
}

function New-KernelDescription([string] $Directory, [string] $Version) {
    [pscustomobject]@{
        Version          = $Version
        VmlinuxPath      = Join-Path $Directory 'vmlinux'
        ModulesDirectory = Join-Path $Directory "lib/modules/$Version"
    }
}

function Lock-File([string] $Path, [timespan] $Timeout) {
    # FileShare.None is flock(LOCK_EX) on Linux in .NET: the same lock TestGuest.cs and ZfsFuseDaemon.cs take.
    $deadline = [DateTime]::UtcNow + $Timeout
    while ($true) {
        try { return [IO.FileStream]::new($Path, 'OpenOrCreate', 'ReadWrite', 'None') }
        catch [IO.IOException] {
            if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out waiting for the lock $Path." }
            Start-Sleep -Milliseconds 200
        }
    }
}

# The newc ("070701") cpio format the kernel unpacks into its initramfs; ordinal order puts every
# directory before its contents.
class CpioWriter {
    hidden [Collections.Generic.SortedDictionary[string, object]] $Entries = [Collections.Generic.SortedDictionary[string, object]]::new([StringComparer]::Ordinal)

    [void] Directory([string] $Path) {
        $Path = $Path.Trim('/')
        if (-not $Path -or $this.Entries.ContainsKey($Path)) { return }
        $parent = [IO.Path]::GetDirectoryName($Path)
        if ($parent) { $this.Directory($parent) }
        $this.Entries[$Path] = @(0x41ED, [byte[]]::new(0), 0, 0)
    }

    [void] File([string] $Path, [byte[]] $Data, [int] $Permissions) { $this.Add($Path, @((0x8000 -bor $Permissions), $Data, 0, 0)) }

    [void] Symlink([string] $Path, [string] $Target) { $this.Add($Path, @(0xA1FF, [Text.Encoding]::UTF8.GetBytes($Target), 0, 0)) }

    [void] CharDevice([string] $Path, [int] $Major, [int] $Minor) { $this.Add($Path, @(0x2180, [byte[]]::new(0), $Major, $Minor)) }

    hidden [void] Add([string] $Path, [object[]] $Entry) {
        $Path = $Path.Trim('/')
        $parent = [IO.Path]::GetDirectoryName($Path)
        if ($parent) { $this.Directory($parent) }
        $this.Entries[$Path] = $Entry
    }

    [void] WriteTo([IO.Stream] $Output) {
        $ino = 1
        foreach ($pair in $this.Entries.GetEnumerator()) {
            $e = $pair.Value
            [CpioWriter]::WriteEntry($Output, $pair.Key, $e[0], $e[1], $e[2], $e[3], $ino++)
        }
        [CpioWriter]::WriteEntry($Output, 'TRAILER!!!', 0, [byte[]]::new(0), 0, 0, 0)
    }

    hidden static [void] WriteEntry([IO.Stream] $Output, [string] $Name, [int] $Mode, [byte[]] $Data, [int] $Major, [int] $Minor, [int] $Ino) {
        $nameBytes = [Text.Encoding]::UTF8.GetBytes($Name)
        $links = if (($Mode -band 0xF000) -eq 0x4000) { 2 } else { 1 }
        $fields = $Ino, $Mode, 0, 0, $links, 0, $Data.Length, 0, 0, $Major, $Minor, ($nameBytes.Length + 1), 0
        $header = '070701' + (($fields | ForEach-Object { $_.ToString('X8') }) -join '')
        $Output.Write([Text.Encoding]::ASCII.GetBytes($header), 0, 110)
        $Output.Write($nameBytes, 0, $nameBytes.Length)
        $Output.WriteByte(0)
        [CpioWriter]::Pad($Output, 110 + $nameBytes.Length + 1)
        $Output.Write($Data, 0, $Data.Length)
        [CpioWriter]::Pad($Output, $Data.Length)
    }

    hidden static [void] Pad([IO.Stream] $Output, [int] $Written) {
        for ($i = $Written; $i % 4 -ne 0; $i++) { $Output.WriteByte(0) }
    }
}

Export-ModuleMember -Function Get-DebianGuestKernel, New-BusyboxInitramfs, Expand-Vmlinux
