# The real components the Pester suite runs on, started the way the xunit fixtures in tests/Shared
# start them: a docker-registry on a free 127.0.0.1 port (RegistryServer.cs), a podman API service
# with its own storage (PodmanService.cs), the busybox test guest on Debian's kernel (TestGuest.cs,
# FlightVmGuest.cs) and the machine's one zfs-fuse daemon, shared through the same lock and users
# file (ZfsFuseDaemon.cs). Nothing needs an environment variable set by hand.
#
# A component that is missing is reported, not hidden: each start function returns an object whose
# UnavailableReason says what is missing, and Assert-RealComponent (first line of an It) fails the
# case in CI (CI=true) and skips it elsewhere with "REAL COMPONENT UNAVAILABLE: <reason>".

Set-StrictMode -Version 3.0
$script:RepoRoot = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../..'))
Import-Module (Join-Path $script:RepoRoot 'examples/TinyGuest.psm1') -Force

function Test-InCi { $env:CI -eq 'true' }

function Test-IsRoot { (& id -u) -eq '0' }

function Find-Program([string] $Name) {
    # Debian keeps zfs-fuse, zpool and friends in sbin, which a non-root PATH may lack.
    $found = Get-Command $Name -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if ($found) { return $found.Source }
    foreach ($dir in '/usr/sbin', '/sbin', '/usr/local/sbin') { if (Test-Path -PathType Leaf "$dir/$Name") { return "$dir/$Name" } }
    $null
}

function New-Unavailable([string] $Reason) { [pscustomobject]@{ UnavailableReason = $Reason } }

function Assert-RealComponent {
    <#
    .SYNOPSIS
        First line of an It that needs components: fails in CI, skips elsewhere, when one is unavailable.
    .EXAMPLE
        Assert-RealComponent $Registry $Guest
    #>
    param([Parameter(ValueFromRemainingArguments)] [object[]] $Component)
    foreach ($c in $Component) {
        $reason = if ($null -eq $c) { 'the fixture did not start (see BeforeAll)' } else { $c.UnavailableReason }
        if (-not $reason) { continue }
        $message = "REAL COMPONENT UNAVAILABLE: $reason"
        if (Test-InCi) { throw "$message CI must provide it (.ci/run installs it; tests/Pester/RealComponents.psm1 starts it)." }
        Set-ItResult -Skipped -Because $message
        return
    }
}

function Import-VmToolsUnderTest {
    # The module as built into out/VmTools; a missing build is a failure, not a skip.
    $psd1 = Join-Path $script:RepoRoot 'out/VmTools/VmTools.psd1'
    if (-not (Test-Path $psd1)) { throw "$psd1 is missing: build first (dotnet pwsh ./Build.ps1 -Task Build)." }
    Import-Module $psd1 -Force -Global
    $psd1
}

function New-TestHome {
    # A private VMTOOLS_HOME for one test file; the caller removes it in AfterAll.
    $dir = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-pester-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
    $null = New-Item -ItemType Directory $dir
    $dir
}

function Get-FreeTcpPort {
    $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Start-ChildProcess([string] $File, [string[]] $Arguments, [hashtable] $Environment = @{}, [string[]] $RemoveEnvironmentPrefix = @(), [string] $LogPath) {
    # stdout and stderr go to a log file so a failed start can say why; the process is ours to stop.
    $psi = [Diagnostics.ProcessStartInfo]::new('/bin/sh')
    $psi.UseShellExecute = $false
    foreach ($key in @($psi.Environment.Keys)) {
        foreach ($prefix in $RemoveEnvironmentPrefix) { if ($key.StartsWith($prefix, [StringComparison]::Ordinal)) { $null = $psi.Environment.Remove($key) } }
    }
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    # exec keeps one process (the pid is the program's own); sh only redirects.
    $psi.ArgumentList.Add('-c'); $psi.ArgumentList.Add('exec "$0" "$@" >"$VMTOOLS_TEST_LOG" 2>&1')
    $psi.Environment['VMTOOLS_TEST_LOG'] = $LogPath
    $psi.ArgumentList.Add($File)
    foreach ($a in $Arguments) { $psi.ArgumentList.Add($a) }
    [Diagnostics.Process]::Start($psi)
}

function Wait-Until([scriptblock] $Condition, [timespan] $Timeout) {
    $deadline = [DateTime]::UtcNow + $Timeout
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { return $false }
        Start-Sleep -Milliseconds 100
    }
    $true
}

function Stop-ChildProcess([Diagnostics.Process] $Process, [int] $GraceSeconds = 10) {
    if (-not $Process -or $Process.HasExited) { return }
    & kill -TERM $Process.Id 2>$null
    if (-not $Process.WaitForExit($GraceSeconds * 1000)) { $Process.Kill($true); $null = $Process.WaitForExit(5000) }
}

# ---------------------------------------------------------------- registry

function Start-TestRegistry {
    <#
    .SYNOPSIS
        A docker-registry (distribution 2.8) on a free 127.0.0.1 port, plain HTTP, delete enabled. Host is host:port.
    #>
    $exe = Find-Program docker-registry
    if (-not $exe) { return New-Unavailable "'docker-registry' is not installed (apt-get install docker-registry)." }
    $dir = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-registry-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
    $null = New-Item -ItemType Directory (Join-Path $dir 'storage')
    $port = Get-FreeTcpPort
    Set-Content (Join-Path $dir 'config.yml') @"
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $(Join-Path $dir 'storage')
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
"@
    # distribution reads REGISTRY_* variables as configuration overrides; the suite's own (REGISTRY_CACHE) must not leak in.
    $process = Start-ChildProcess $exe 'serve', (Join-Path $dir 'config.yml') -RemoveEnvironmentPrefix 'REGISTRY_' -LogPath (Join-Path $dir 'registry.log')
    $registry = [pscustomobject]@{ UnavailableReason = $null; Host = "127.0.0.1:$port"; Process = $process; Directory = $dir }
    $answers = Wait-Until {
        if ($process.HasExited) { return $true }
        try { (Invoke-WebRequest "http://127.0.0.1:$port/v2/" -TimeoutSec 2 -SkipHttpErrorCheck).StatusCode -eq 200 } catch { $false }
    } ([timespan]::FromSeconds(20))
    if (-not $answers -or $process.HasExited) {
        $log = Get-Content -Raw (Join-Path $dir 'registry.log') -ErrorAction Ignore
        Stop-TestRegistry $registry
        throw "docker-registry did not answer on 127.0.0.1:${port}: $log"
    }
    $registry
}

function Stop-TestRegistry($Registry) {
    if (-not $Registry -or $Registry.UnavailableReason) { return }
    Stop-ChildProcess $Registry.Process 5
    Remove-Item -Recurse -Force $Registry.Directory -ErrorAction Ignore
}

# ---------------------------------------------------------------- podman

$script:PodmanFolderPrefix = 'vmtools-podman-'

function Start-TestPodman {
    <#
    .SYNOPSIS
        `podman system service` on a socket of its own, with its own storage, runc, ulimits this machine allows,
        and a registries.conf marking InsecureRegistry plain HTTP. DockerHost is the DOCKER_HOST value.
    #>
    param([string[]] $InsecureRegistry = @())
    $podman = Find-Program podman
    if (-not $podman) { return New-Unavailable "'podman' is not installed (apt-get install podman runc)." }
    if (-not (Find-Program runc)) { return New-Unavailable "'runc' is not installed (apt-get install runc)." }
    if (-not (Test-IsRoot)) { return New-Unavailable "needs root: podman's storage and builds run as root here (rootless needs uidmap and fuse-overlayfs)." }
    if (-not (Find-Program curl)) { return New-Unavailable "'curl' is not installed (apt-get install curl)." }
    Remove-StalePodmanFolder
    # The folder name carries this process id, as PodmanService.cs names its own, so either side cleans up after a crashed other.
    $root = Join-Path ([IO.Path]::GetTempPath()) ("$script:PodmanFolderPrefix$PID-" + [guid]::NewGuid().ToString('N')).Substring(0, $script:PodmanFolderPrefix.Length + 20)
    $null = New-Item -ItemType Directory $root
    $conf = Join-Path $root 'containers.conf'
    $registries = Join-Path $root 'registries.conf'
    # crun (the default) fails on hybrid cgroups; podman's default ulimits exceed what root may raise here.
    Set-Content $conf @'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'@
    $text = "unqualified-search-registries = []`nshort-name-mode = `"disabled`"`n"
    foreach ($r in $InsecureRegistry) { $text += "`n[[registry]]`nlocation = `"$r`"`ninsecure = true`n" }
    Set-Content $registries $text
    $socket = Join-Path $root 'api.sock'
    $global = '--root', (Join-Path $root 'storage'), '--runroot', (Join-Path $root 'run'), '--tmpdir', (Join-Path $root 'tmp'), '--storage-driver', 'overlay'
    $environment = @{ CONTAINERS_CONF = $conf; CONTAINERS_REGISTRIES_CONF = $registries }
    $process = Start-ChildProcess $podman ($global + 'system', 'service', '--time=0', "unix://$socket") -Environment $environment -LogPath (Join-Path $root 'service.log')
    Set-Content (Join-Path $root 'service.pid') $process.Id
    $engine = [pscustomobject]@{
        UnavailableReason = $null; Root = $root; Socket = $socket; DockerHost = "unix://$socket"; Process = $process
    }
    $answers = Wait-Until { $process.HasExited -or (& curl -s -o /dev/null -w '%{http_code}' --unix-socket $socket http://d/_ping) -eq '200' } ([timespan]::FromSeconds(30))
    if (-not $answers -or $process.HasExited) {
        $log = Get-Content -Raw (Join-Path $root 'service.log') -ErrorAction Ignore
        Stop-TestPodman $engine
        throw "podman system service did not answer on unix://${socket}: $log"
    }
    $engine
}

function Stop-TestPodman($Engine) {
    if (-not $Engine -or $Engine.UnavailableReason) { return }
    # SIGTERM lets podman shut its storage down cleanly.
    Stop-ChildProcess $Engine.Process 10
    Remove-PodmanFolder $Engine.Root
}

function Remove-PodmanFolder([string] $Root) {
    # Unmount what podman left mounted beneath the folder (deepest first), then delete it.
    $prefix = $Root.TrimEnd('/') + '/'
    $mounts = Get-Content /proc/self/mountinfo | ForEach-Object { ($_ -split ' ')[4] -replace '\\040', ' ' } |
        Where-Object { $_ -eq $Root -or $_.StartsWith($prefix, [StringComparison]::Ordinal) } |
        Sort-Object Length -Descending
    foreach ($m in $mounts) { & umount -l $m 2>$null }
    Remove-Item -Recurse -Force $Root -ErrorAction Ignore
}

function Remove-StalePodmanFolder {
    # Folders of crashed runs (their owner process gone), whoever made them: this suite or the xunit fixture.
    foreach ($dir in Get-ChildItem -Directory ([IO.Path]::GetTempPath()) -Filter "$script:PodmanFolderPrefix*" -ErrorAction Ignore) {
        $rest = $dir.Name.Substring($script:PodmanFolderPrefix.Length)
        $owner = 0
        if (-not [int]::TryParse(($rest -split '-')[0], [ref] $owner) -or $owner -le 0) { continue }
        if (Test-Path "/proc/$owner") { continue }
        $service = 0
        $pidFile = Join-Path $dir.FullName 'service.pid'
        if ((Test-Path $pidFile) -and [int]::TryParse((Get-Content -Raw $pidFile).Trim(), [ref] $service) -and (Test-Path "/proc/$service/cmdline") -and
            (Get-Content -Raw "/proc/$service/cmdline").Contains($dir.FullName)) {
            & kill -KILL $service 2>$null
        }
        Remove-PodmanFolder $dir.FullName
    }
}

# ---------------------------------------------------------------- test guest

$script:GuestReadyMarker = 'FLIGHTVM-GUEST-READY'
# The power-button listener every test guest sources, shared with the xunit guests.
$script:PowerButtonScript = Join-Path $script:RepoRoot 'tests/Shared/GuestScripts/power-button.sh'

function Get-TestGuest {
    <#
    .SYNOPSIS
        The busybox guest the VM cases boot (as tests/Shared/FlightVmGuest.cs): it loads virtio and the ACPI
        power button, prints ReadyMarker on ttyS0, and powers off on a power-button press, so a graceful
        stop is real. Kernel from Debian's package, cached machine-wide with the xunit suites.
        With -Ssh, the guest SSH reaches (as tests/Shared/SshGuest.cs, from the same files in
        tests/Shared/SshGuest): the host's sshd and sftp-server with their libraries, a DHCP lease printed as
        'GUEST-IP <addr>', and a per-call key pair whose public half root accepts.
    .OUTPUTS
        Kernel, Initrd, KernelArgs, ReadyMarker, Directory (remove it when done), with -Ssh also KeyPath
        and User; or UnavailableReason.
    #>
    param([switch] $Ssh)
    if (-not (Find-Program qemu-system-x86_64)) { return New-Unavailable "'qemu-system-x86_64' is not installed (apt-get install qemu-system-x86)." }
    if (-not (Find-Program qemu-img)) { return New-Unavailable "'qemu-img' is not installed (apt-get install qemu-utils)." }
    if (-not (Find-Program busybox)) { return New-Unavailable "'busybox' is not installed (apt-get install busybox-static)." }
    $cacheRoot = if ($env:VMTOOLS_TEST_GUEST_CACHE) { [IO.Path]::GetFullPath($env:VMTOOLS_TEST_GUEST_CACHE) } else { '/var/tmp/vmtools-test-guest' }
    try { $kernel = Get-DebianGuestKernel -CacheRoot $cacheRoot }
    catch { return New-Unavailable "test guest kernel: $($_.Exception.Message)" }
    $dir = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-pester-guest-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
    if ($Ssh) { return New-SshTestGuest $kernel $dir }
    $init = @"
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in `$(cat /lib/modules/load-order); do insmod `$m 2>/dev/null; done
sleep 0.2
. /etc/power-button.sh
echo $script:GuestReadyMarker
while true; do sleep 3600; done
"@
    $initrd = New-BusyboxInitramfs -Path (Join-Path $dir 'flightvm-guest.gz') -InitScript $init -Kernel $kernel -Module virtio_pci, virtio_blk, button, evdev -ExtraFile @{ 'etc/power-button.sh' = $script:PowerButtonScript }
    [pscustomobject]@{
        UnavailableReason = $null
        Kernel            = $kernel.VmlinuxPath
        Initrd            = $initrd
        # no_timer_check as the xunit rig passes it: on a slow TCG host the kernel's timer check can panic the guest.
        KernelArgs        = 'console=ttyS0 panic=-1 no_timer_check'
        ReadyMarker       = $script:GuestReadyMarker
        Directory         = $dir
    }
}

function Get-TapNetworking {
    <#
    .SYNOPSIS
        What -Network Tap on a VmTools bridge needs here: root (taps, bridges) and dnsmasq (dnsmasq-base).
        Returns an object for Assert-RealComponent, with a bridge name unique to the caller (Bridge).
    #>
    if (-not (Test-IsRoot)) { return New-Unavailable 'needs root: tap devices, bridges and a DHCP server.' }
    if (-not (Find-Program ip)) { return New-Unavailable "'ip' is not installed (apt-get install iproute2)." }
    if (-not (Find-Program dnsmasq)) { return New-Unavailable "'dnsmasq' is not installed (apt-get install dnsmasq-base)." }
    [pscustomobject]@{ UnavailableReason = $null; Bridge = 'vmtpb' + [guid]::NewGuid().ToString('N').Substring(0, 6) }
}

function New-SshTestGuest($Kernel, [string] $Directory) {
    # The layout of tests/Shared/SshGuest.cs, file for file: keep the two the same.
    $bundled = '/usr/sbin/sshd', '/usr/lib/openssh/sftp-server'
    foreach ($p in $bundled) { if (-not (Test-Path $p)) { return New-Unavailable "'$p' is not installed (apt-get install openssh-server)." } }
    foreach ($p in 'ssh', 'scp', 'ssh-keygen', 'ldd') { if (-not (Find-Program $p)) { return New-Unavailable "'$p' is not installed (apt-get install openssh-client libc-bin)." } }
    # Keys are secrets even in a test: the folder is the caller's to remove, and private.
    $null = [IO.Directory]::CreateDirectory($Directory, [IO.UnixFileMode] 'UserRead, UserWrite, UserExecute')
    $key = Join-Path $Directory 'id_ed25519'
    $hostKey = Join-Path $Directory 'ssh_host_ed25519_key'
    foreach ($k in @(@($key, 'vmtools-test-client'), @($hostKey, 'vmtools-test-guest'))) {
        $out = & ssh-keygen -q -t ed25519 -N '' -C $k[1] -f $k[0] 2>&1
        if ($LASTEXITCODE) { throw "ssh-keygen failed: $out" }
    }
    $layout = Join-Path $script:RepoRoot 'tests/Shared/SshGuest'
    $stage = {
        param([string] $Source, [string] $Mode)
        $copy = Join-Path $Directory ('staged-' + [IO.Path]::GetFileName($Source))
        Copy-Item -LiteralPath $Source -Destination $copy -Force
        [IO.File]::SetUnixFileMode($copy, [IO.UnixFileMode] [Convert]::ToInt32($Mode, 8))
        $copy
    }
    $files = @{
        'etc/udhcpc.script'            = & $stage (Join-Path $layout 'udhcpc.script') '755'
        'etc/ssh/sshd_config'          = & $stage (Join-Path $layout 'sshd_config') '644'
        'etc/passwd'                   = & $stage (Join-Path $layout 'passwd') '644'
        'etc/group'                    = & $stage (Join-Path $layout 'group') '644'
        'etc/nsswitch.conf'            = & $stage (Join-Path $layout 'nsswitch.conf') '644'
        'etc/power-button.sh'          = $script:PowerButtonScript
        'etc/ssh/ssh_host_ed25519_key' = $hostKey
        'root/.ssh/authorized_keys'    = & $stage "$key.pub" '600'
    }
    foreach ($program in $bundled) {
        $files[$program.TrimStart('/')] = $program
        # ldd's "name => /path (addr)" lines and the loader's own absolute line; the guest gets each at the same path.
        foreach ($line in & ldd $program) {
            $text = "$line".Trim()
            $at = $text.IndexOf('=> ')
            $path = (($at -ge 0) ? $text.Substring($at + 3) : $text).Split(' ')[0]
            if ($path.StartsWith('/')) { $files[$path.TrimStart('/')] = $path }
        }
        if ($LASTEXITCODE) { throw "ldd $program failed." }
    }
    $init = Get-Content -Raw (Join-Path $layout 'init')
    $initrd = New-BusyboxInitramfs -Path (Join-Path $Directory 'ssh-guest.gz') -InitScript $init -Kernel $Kernel -Module virtio_pci, virtio_net, button, evdev -ExtraFile $files
    [pscustomobject]@{
        UnavailableReason = $null
        Kernel            = $Kernel.VmlinuxPath
        Initrd            = $initrd
        KernelArgs        = 'console=ttyS0 panic=-1 no_timer_check'
        ReadyMarker       = 'SSH-GUEST-READY'
        Directory         = $Directory
        KeyPath           = $key
        User              = 'root'
    }
}

# ---------------------------------------------------------------- zfs-fuse

# The protocol of tests/Shared/ZfsFuseDaemon.cs: one daemon per machine; a flock on <root>/lock guards
# start and stop; <root>/users lists the live processes using it; <root>/owned-pid names a daemon a test
# process started (the last user stops it). A daemon that was already answering is never stopped.
$script:ZfsRoot = Join-Path ([IO.Path]::GetTempPath()) 'vmtools-zfs-fuse'
$script:ZfsPoolPrefix = 'vmtt'

function Enter-ZfsFuse {
    <#
    .SYNOPSIS
        Registers this process as a user of the machine's zfs-fuse daemon, starting it when none answers.
    #>
    if (-not (Test-IsRoot)) { return New-Unavailable 'needs root: zfs-fuse mounts filesystems.' }
    if (-not (Find-Program zfs-fuse) -or -not (Find-Program zpool)) { return New-Unavailable "'zfs-fuse' is not installed (apt-get install zfs-fuse)." }
    $null = New-Item -ItemType Directory -Force $script:ZfsRoot
    $pidPath = Join-Path $script:ZfsRoot 'zfs-fuse.pid'
    $lock = Lock-ZfsRoot
    try {
        $users = Get-ZfsUser
        # A daemon that runs but does not answer (starting, shutting down, or slow on a loaded host) is waited
        # for, never replaced: a second one cannot take its socket, and its pidfile must stay.
        if (-not (Test-ZfsAnswers)) {
            $null = Wait-Until { (Test-ZfsAnswers) -or -not (Get-ZfsFusePid) } ([timespan]::FromSeconds(60))
            if (-not (Test-ZfsAnswers) -and (Get-ZfsFusePid)) { throw "a zfs-fuse daemon runs but 'zpool list' has not answered for 60 s" }
        }
        if (-not (Test-ZfsAnswers)) {
            # A stale pidfile makes a new daemon exit 1 silently.
            Remove-Item -Force $pidPath -ErrorAction Ignore
            $out = & (Find-Program zfs-fuse) --no-kstat-mount --pidfile $pidPath 2>&1
            if ($LASTEXITCODE) { throw "zfs-fuse failed to start ($LASTEXITCODE): $out" }
            if (-not (Wait-Until { Test-ZfsAnswers } ([timespan]::FromSeconds(15)))) { throw "zfs-fuse started but 'zpool list' never answered." }
            Set-Content (Join-Path $script:ZfsRoot 'owned-pid') ((Get-Content -Raw $pidPath -ErrorAction Ignore) ?? '').Trim()
            if (-not $users) { Remove-LeftoverPool }
        }
        Set-Content (Join-Path $script:ZfsRoot 'users') (@($users) + $PID | ForEach-Object { "$_" })
    } finally { $lock.Dispose() }
    [pscustomobject]@{ UnavailableReason = $null }
}

function Exit-ZfsFuse($Zfs) {
    if (-not $Zfs -or $Zfs.UnavailableReason) { return }
    $lock = Lock-ZfsRoot
    try {
        $users = @(Get-ZfsUser | Where-Object { $_ -ne $PID })
        Set-Content (Join-Path $script:ZfsRoot 'users') ($users | ForEach-Object { "$_" })
        $owned = Join-Path $script:ZfsRoot 'owned-pid'
        if (-not $users -and (Test-Path $owned)) {
            $daemon = 0
            if ([int]::TryParse((Get-Content -Raw $owned).Trim(), [ref] $daemon) -and (Test-IsZfsFuse $daemon)) {
                & kill -TERM $daemon
                $null = Wait-Until { -not (Test-IsZfsFuse $daemon) } ([timespan]::FromSeconds(30))
            }
            Remove-Item -Force $owned
        }
    } finally { $lock.Dispose() }
}

function New-TestPoolName { $script:ZfsPoolPrefix + [guid]::NewGuid().ToString('N').Substring(0, 10) }

function Remove-TestPool([string] $Pool) {
    # Destroys a test pool whether imported, exported or faulted (zfs-fuse calls a mounted pool busy).
    $zpool = Find-Program zpool; $zfs = Find-Program zfs
    & $zpool list -H -o name $Pool *>$null
    if ($LASTEXITCODE) { return }
    & $zpool destroy -f $Pool *>$null
    if (-not $LASTEXITCODE) { return }
    & $zfs list -H -o name -r $Pool 2>$null | Sort-Object { ($_ -split '/').Count } -Descending | ForEach-Object { & $zfs unmount -f $_.Trim() *>$null }
    foreach ($i in 1..5) {
        & $zpool destroy -f $Pool *>$null
        if (-not $LASTEXITCODE) { return }
        Start-Sleep -Milliseconds 500
    }
}

function Test-ZfsAnswers { & (Find-Program zpool) list *>$null; $LASTEXITCODE -eq 0 }

function Test-IsZfsFuse([int] $ProcessId) {
    # /proc/<pid>/stat is "pid (comm) state ...": a zombie (Z) left for its parent to reap is no daemon.
    try { (Get-Content -Raw "/proc/$ProcessId/stat" -ErrorAction Stop) -match '^\d+ \(zfs-fuse\) [^Z]' } catch { $false }
}

function Get-ZfsFusePid {
    Get-ChildItem -Directory /proc | Where-Object { $_.Name -match '^\d+$' -and (Test-IsZfsFuse ([int] $_.Name)) } | Select-Object -First 1
}

function Get-ZfsUser {
    $path = Join-Path $script:ZfsRoot 'users'
    if (-not (Test-Path $path)) { return @() }
    @(Get-Content $path | ForEach-Object { $p = 0; if ([int]::TryParse("$_".Trim(), [ref] $p) -and $p -gt 0 -and (Test-Path "/proc/$p")) { $p } } | Select-Object -Unique)
}

function Remove-LeftoverPool {
    # A daemon this process started found pools of an earlier crashed run in zpool.cache: they belong to nobody.
    foreach ($name in & (Find-Program zpool) list -H -o name 2>$null) {
        if ("$name".Trim().StartsWith($script:ZfsPoolPrefix, [StringComparison]::Ordinal)) { Remove-TestPool "$name".Trim() }
    }
}

function Lock-ZfsRoot {
    $deadline = [DateTime]::UtcNow.AddMinutes(2)
    while ($true) {
        try { return [IO.FileStream]::new((Join-Path $script:ZfsRoot 'lock'), 'OpenOrCreate', 'ReadWrite', 'None') }
        catch [IO.IOException] {
            if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out waiting for the zfs-fuse lock in $script:ZfsRoot." }
            Start-Sleep -Milliseconds 100
        }
    }
}

# ---------------------------------------------------------------- one-shot pwsh

function Get-PwshCommandLine {
    # The program and leading arguments that start another pwsh like this one: the dotnet tool's engine
    # runs as `dotnet …/pwsh.dll` (and its `pwsh` need not be on PATH); a packaged pwsh is its own executable.
    $exe = (Get-Process -Id $PID).Path
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { @($exe, (Join-Path $PSHOME 'pwsh.dll')) } else { @($exe) }
}

function Invoke-Pwsh {
    <#
    .SYNOPSIS
        Runs Command in a fresh pwsh process (as a CI step would), with the built module imported and
        Environment set; returns ExitCode, Output (stdout lines) and Error (stderr text).
        With -WithoutProgram (root), the process cannot find that program: as tests/Shared/WithoutProgram.cs,
        it runs in a private mount namespace where tests/Shared/HostScripts/without-program.sh covers each
        folder holding it (PATH, /usr/sbin, /sbin) with a tmpfs showing everything else. The host is not changed.
    #>
    param([Parameter(Mandatory)] [string] $Command, [hashtable] $Environment = @{}, [string] $WithoutProgram)
    $pwsh = @(Get-PwshCommandLine)
    $psd1 = Join-Path $script:RepoRoot 'out/VmTools/VmTools.psd1'
    $stash = $null
    if ($WithoutProgram) {
        # The namespace mounts a tmpfs here; outside it the folder stays empty.
        $stash = Join-Path ([IO.Path]::GetTempPath()) ("vmtools-without-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
        New-Item -ItemType Directory -Path $stash | Out-Null
        $hide = Join-Path $script:RepoRoot 'tests/Shared/HostScripts/without-program.sh'
        $pwsh = @((Find-Program unshare), '--mount', '--propagation', 'private', '--', 'sh', $hide, $stash, $WithoutProgram, '--') + $pwsh
    }
    $psi = [Diagnostics.ProcessStartInfo]::new($pwsh[0])
    $psi.UseShellExecute = $false; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
    foreach ($a in $pwsh | Select-Object -Skip 1) { $psi.ArgumentList.Add($a) }
    foreach ($a in '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$psd1'; $Command") { $psi.ArgumentList.Add($a) }
    # A null or empty value removes the variable: the step sees it unset.
    foreach ($k in $Environment.Keys) { if ($Environment[$k]) { $psi.Environment[$k] = $Environment[$k] } else { $null = $psi.Environment.Remove($k) } }
    $p = [Diagnostics.Process]::Start($psi)
    $stdout = $p.StandardOutput.ReadToEndAsync(); $stderr = $p.StandardError.ReadToEndAsync()
    $p.WaitForExit()
    if ($stash) { Remove-Item -Force $stash }
    [pscustomobject]@{
        ExitCode = $p.ExitCode
        Output   = @($stdout.Result -split "`n" | ForEach-Object TrimEnd | Where-Object { $_ })
        Error    = $stderr.Result
    }
}

Export-ModuleMember -Function Assert-RealComponent, Import-VmToolsUnderTest, New-TestHome, Test-InCi, Test-IsRoot, Find-Program,
    Start-TestRegistry, Stop-TestRegistry, Start-TestPodman, Stop-TestPodman, Get-TestGuest, Get-TapNetworking,
    Enter-ZfsFuse, Exit-ZfsFuse, New-TestPoolName, Remove-TestPool, Invoke-Pwsh, Get-PwshCommandLine
