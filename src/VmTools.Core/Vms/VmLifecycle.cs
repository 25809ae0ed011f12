using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using VmTools.Core.Host;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// Start, stop, wait for and remove VMs. No daemon: each call reads the records, probes the OS and
/// acts, holding the VM's lock; any process can pick up where another died.
/// </summary>
public sealed class VmLifecycle
{
    private readonly VmStore _store;
    private readonly VmToolsPaths _paths;
    private readonly ICommandRunner _runner;
    private readonly AcceleratorProbe _accelerators;
    private readonly BridgeNetwork _network;
    private readonly object _dbGate = new();

    public VmLifecycle(StateDb db, VmToolsPaths paths, ICommandRunner? runner = null, AcceleratorProbe? accelerators = null)
    {
        _store = new VmStore(db, paths);
        _paths = paths;
        _runner = runner ?? ProcessRunner.Instance;
        _accelerators = accelerators ?? AcceleratorProbe.Host;
        _network = new BridgeNetwork(db, paths, _runner);
    }

    public VmStore Store => _store;

    /// <summary>Time from the call until the last qemu was exec'd, for the benchmark.</summary>
    public TimeSpan LastTimeToExec { get; private set; }

    /// <summary>How long a waiter lets a live qemu keep an empty console before it warns (a stuck accelerator looks exactly like that).</summary>
    public static readonly TimeSpan DefaultSilentConsoleWarning = TimeSpan.FromSeconds(60);

    public static void Validate(VmStartRequest r)
    {
        static VmToolsException Bad(string id, string message, object? target) => new(id, FailureKind.InvalidArgument, message) { Target = target };
        if (!File.Exists(r.ImagePath)) throw new VmToolsException("VmImageNotFound", FailureKind.NotFound, $"The base image '{r.ImagePath}' does not exist.") { Target = r.ImagePath };
        if (r.Count is < 1 or > 256) throw Bad("VmCountInvalid", $"-Count must be between 1 and 256, not {r.Count}.", r.Count);
        if (r.MemoryMB is < 16 or > 1_048_576) throw Bad("VmMemoryInvalid", $"-MemoryMB must be between 16 and 1048576, not {r.MemoryMB}.", r.MemoryMB);
        if (r.CpuCount is < 1 or > 255) throw Bad("VmCpuCountInvalid", $"-CpuCount must be between 1 and 255, not {r.CpuCount}.", r.CpuCount);
        if (r.Name is { } n && !VmNaming.IsValidName(r.Count > 1 ? n + "-1" : n))
        {
            throw Bad("VmNameInvalid", $"'{n}' is not a valid VM name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters.", n);
        }

        if (r.KernelPath is { } k && !File.Exists(k)) throw new VmToolsException("VmKernelNotFound", FailureKind.NotFound, $"The kernel '{k}' does not exist.") { Target = k };
        if (r.InitrdPath is { } i && !File.Exists(i)) throw new VmToolsException("VmInitrdNotFound", FailureKind.NotFound, $"The initrd '{i}' does not exist.") { Target = i };
        if (r.KernelPath is null && (r.InitrdPath is not null || r.KernelArgs is not null)) throw Bad("VmKernelRequired", "-Initrd and -KernelArgs need -Kernel (direct kernel boot).", null);
        if (r.CloudInitPath is { } c && !File.Exists(c)) throw new VmToolsException("VmCloudInitNotFound", FailureKind.NotFound, $"The seed ISO '{c}' does not exist.") { Target = c };
        foreach (var v in r.VolumePaths)
        {
            if (!File.Exists(v)) throw new VmToolsException("VmVolumeNotFound", FailureKind.NotFound, $"The volume disk '{v}' does not exist.") { Target = v };
        }

        if (r.MacAddress is { } mac)
        {
            MacAddresses.Require(mac, "VmMacAddressInvalid", "-MacAddress");
            if (r.Count > 1)
            {
                throw Bad("VmMacAddressWithCount", $"MAC {mac} names one NIC (a seed from New-CloudInitIso names its VM's NIC); with -Count {r.Count} make one seed per VM (New-CloudInitConfig | New-CloudInitIso for each).", mac);
            }
        }

        if (r.Network == VmNetworkMode.Tap && !VmNaming.IsValidInterfaceName(r.BridgeName)) throw Bad("VmBridgeNameInvalid", $"'{r.BridgeName}' is not a valid interface name.", r.BridgeName);
        if (r.DiskMode == VmDiskMode.DmSnapshot && DiskFormat.Detect(r.ImagePath) != "raw")
        {
            throw Bad("VmDmSnapshotNeedsRaw", $"dm-snapshot mode needs a raw base image; '{r.ImagePath}' is qcow2 (use the default overlay mode).", r.ImagePath);
        }
    }

    /// <summary>Allocates the records in one transaction, then brings every VM up in parallel.</summary>
    public async Task<IReadOnlyList<VmStartResult>> StartAsync(VmStartRequest request, Action<string>? verbose, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        request = request with
        {
            ImagePath = Path.GetFullPath(request.ImagePath),
            KernelPath = request.KernelPath is null ? null : Path.GetFullPath(request.KernelPath),
            InitrdPath = request.InitrdPath is null ? null : Path.GetFullPath(request.InitrdPath),
            CloudInitPath = request.CloudInitPath is null ? null : Path.GetFullPath(request.CloudInitPath),
            VolumePaths = request.VolumePaths.Select(Path.GetFullPath).ToArray(),
            MacAddress = request.MacAddress is { } mac ? MacAddresses.Normalize(mac) ?? mac : null,
        };
        Validate(request);
        var accelerator = _accelerators.Choose(request.Accelerator);
        verbose?.Invoke(accelerator.Reason);
        request = request with { Accelerator = accelerator.Accelerator };
        if (request.Network == VmNetworkMode.Tap && !IsRoot())
        {
            throw new VmToolsException("VmTapNeedsRoot", FailureKind.PermissionDenied, "-Network Tap creates tap devices and needs root; use -Network User.");
        }

        if (request.DiskMode == VmDiskMode.DmSnapshot && !IsRoot())
        {
            throw new VmToolsException("VmDmSnapshotNeedsRoot", FailureKind.PermissionDenied, "dm-snapshot mode attaches loop devices and needs root.");
        }

        // Known before anything is allocated: a bridge VmTools makes (or made) gets a DHCP server.
        if (request.Network == VmNetworkMode.Tap && _network.WouldManage(request.BridgeName)) DhcpServer.Require();

        _paths.EnsureCreated();
        IReadOnlyList<FlightVm> vms;
        lock (_dbGate) vms = _store.Allocate(request);
        var locks = vms.Select(v => VmLock.TryAcquire(_paths, v.Id)!).ToList();
        try
        {
            if (await BringUpBridgeAsync(vms, request.BridgeName, ct).ConfigureAwait(false) is { } failed) return failed;
            var execTimes = new TimeSpan[vms.Count];
            var results = await Task.WhenAll(vms.Select((vm, i) => StartOneAsync(vm, verbose, clock, t => execTimes[i] = t, ct))).ConfigureAwait(false);
            LastTimeToExec = execTimes.Max();
            return results;
        }
        finally
        {
            foreach (var l in locks) l?.Dispose();
        }
    }

    /// <summary>
    /// Before any tap joins a VmTools bridge: the bridge, its address and its DHCP server with the new
    /// records' leases. When that fails, no VM can get its address: all are recorded Broken with the reason.
    /// </summary>
    private async Task<VmStartResult[]?> BringUpBridgeAsync(IReadOnlyList<FlightVm> vms, string bridgeName, CancellationToken ct)
    {
        if (vms.All(v => v.IPAddress is null) || _network.Bridges.Find(bridgeName) is not { } bridge) return null;
        try
        {
            await _network.EnsureAsync(bridge, ct).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is VmToolsException or IOException or UnauthorizedAccessException)
        {
            var id = e is VmToolsException v ? v.ErrorId : "VmDhcpServerFailed";
            return vms.Select(vm =>
            {
                var message = $"VM '{vm.Name}' did not start: bridge '{bridgeName}' could not be brought up: {e.Message}";
                lock (_dbGate) vm = _store.SetState(vm, VmState.Broken, message);
                return new VmStartResult(vm, new VmToolsException(id, FailureKind.InvalidOperation, message, e) { Target = vm.Name });
            }).ToArray();
        }
    }

    private async Task<VmStartResult> StartOneAsync(FlightVm vm, Action<string>? verbose, Stopwatch clock, Action<TimeSpan> execAt, CancellationToken ct)
    {
        var handles = new VmHandles { BootId = BootId.Current, QmpSocket = vm.QmpSocketPath };
        try
        {
            PrivateFiles.PrepareVmDirectory(vm.Directory, vm.ConsoleLogPath);
            if (vm.DiskMode == VmDiskMode.Overlay)
            {
                await OverlayDisk.CreateAsync(_runner, vm.ImagePath, vm.OverlayPath, ct).ConfigureAwait(false);
            }
            else
            {
                using (var cow = PrivateFiles.Open(vm.OverlayPath))
                {
                    cow.SetLength(new FileInfo(vm.ImagePath).Length);
                }

                var dm = await DmSnapshotDisk.AttachAsync(_runner, vm.ImagePath, vm.OverlayPath, vm.DmName, ct).ConfigureAwait(false);
                handles = handles with { BaseLoop = dm.BaseLoop, CowLoop = dm.CowLoop, DmName = dm.DmName, DmDevice = dm.DmDevice };
                HandleStore.Set(vm, handles);
            }

            if (vm.TapName is { } tap)
            {
                // Recorded before it exists: a crash right after creation still leaves its name for teardown.
                handles = handles with { TapDevice = tap };
                HandleStore.Set(vm, handles);
                await TapDevice.CreateAsync(_runner, tap, vm.BridgeName!, ct).ConfigureAwait(false);
            }

            var argv = QemuCommandLine.Build(vm, handles);
            verbose?.Invoke($"{vm.Name}: {QemuCommandLine.Program} {string.Join(' ', argv)}");
            execAt(clock.Elapsed);
            var run = await _runner.RunAsync(new CommandSpec(QemuCommandLine.Program, argv) { WorkingDirectory = vm.Directory }, ct).ConfigureAwait(false);
            run.EnsureSuccess("VmStartFailed");
            var pid = int.Parse(File.ReadAllText(QemuCommandLine.PidFilePath(vm)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            var process = ProcessTable.Read("/proc", pid)
                ?? throw new VmToolsException("VmExitedBeforeReady", FailureKind.InvalidOperation, $"qemu (pid {pid}) exited right after starting. Console: {ConsoleTail(vm)}");
            handles = handles with { Pid = pid, ProcessStartTime = process.StartTime };
            HandleStore.Set(vm, handles);
            lock (_dbGate) vm = _store.SetState(vm, VmState.Running, null);
            verbose?.Invoke($"{vm.Name}: qemu pid {pid}, QMP {vm.QmpSocketPath}");
            return new VmStartResult(vm, null);
        }
        catch (Exception e) when (e is VmToolsException or IOException or UnauthorizedAccessException or FormatException)
        {
            var p = handles.Pid > 0 ? VmLiveness.Process(vm, handles, ProcessTable.Probe(new[] { handles.Pid }), BootId.Current) : null;
            var undo = await VmTeardown.ReleaseAsync(_runner, vm, handles, p, CancellationToken.None).ConfigureAwait(false);
            var message = $"VM '{vm.Name}' did not start: {e.Message}" + (undo.Count > 0 ? " Teardown: " + string.Join("; ", undo) : string.Empty);
            lock (_dbGate) vm = _store.SetState(vm, VmState.Broken, message);
            var id = e is VmToolsException v && v.ErrorId is "VmDmSnapshotFailed" or "VmTapCreateFailed" or "VmOverlayCreateFailed" ? v.ErrorId : "VmStartFailed";
            return new VmStartResult(vm, new VmToolsException(id, FailureKind.InvalidOperation, message, e) { Target = vm.Name });
        }
    }

    /// <summary>
    /// Waits until the console matches <paramref name="readyPattern"/>, or (no pattern) until the
    /// VM's <see cref="VmSshEndpoint"/> answers with an SSH banner. Fails early when qemu exits. A console still
    /// empty after <paramref name="silentConsoleWarning"/> (default <see cref="DefaultSilentConsoleWarning"/>,
    /// zero: never) while qemu runs gets one warning naming the accelerator, since an accelerator
    /// that cannot run the guest shows nothing else.
    /// </summary>
    public async Task<FlightVm> WaitAsync(string name, string? readyPattern, TimeSpan timeout, CancellationToken ct, TimeSpan? silentConsoleWarning = null, Action<string>? warn = null)
    {
        var vm = _store.Get(name);
        Regex? pattern = null;
        if (readyPattern is not null)
        {
            try { pattern = new Regex(readyPattern, RegexOptions.Multiline | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
            catch (ArgumentException e) { throw new VmToolsException("VmReadyPatternInvalid", FailureKind.InvalidArgument, $"-ReadyPattern is not a valid regex: {e.Message}", e) { Target = readyPattern }; }
        }
        else if (VmSshEndpoint.TryOf(vm) is null)
        {
            throw new VmToolsException("VmReadinessUndefined", FailureKind.InvalidArgument, $"VM '{vm.Name}' has no SSH endpoint (no forwarded port, no address on a VmTools bridge); give -ReadyPattern (a console regex).") { Target = vm.Name };
        }

        var started = DateTime.UtcNow;
        var deadline = started + timeout;
        var warnAfter = silentConsoleWarning ?? DefaultSilentConsoleWarning;
        var warned = warnAfter <= TimeSpan.Zero;
        var checkedFrom = 0L;
        var text = new StringBuilder();
        while (true)
        {
            var d = HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current);
            checkedFrom = ReadNew(vm.ConsoleLogPath, checkedFrom, text);
            if (pattern is not null && pattern.IsMatch(text.ToString())) return vm;
            if (pattern is null && await SshBannerAsync(VmSshEndpoint.Of(vm), Min(BannerPatience, deadline - DateTime.UtcNow), ct).ConfigureAwait(false))
            {
                return vm;
            }

            if (!d.Alive)
            {
                throw new VmToolsException("VmExitedBeforeReady", FailureKind.InvalidOperation, $"VM '{vm.Name}' is not running (qemu exited before it was ready). Console: {ConsoleTail(vm)}") { Target = vm.Name };
            }

            if (!warned && text.Length == 0 && DateTime.UtcNow - started >= warnAfter)
            {
                warned = true;
                warn?.Invoke($"VM '{vm.Name}': the console is still empty after {warnAfter.TotalSeconds:0.#} s while qemu runs {SilentConsoleHint(vm)}");
            }

            if (DateTime.UtcNow >= deadline)
            {
                var console = text.Length == 0 ? $"The console stayed empty: qemu ran {SilentConsoleHint(vm)}" : $"Console: {ConsoleTail(vm)}";
                throw new VmToolsException("VmReadyTimeout", FailureKind.OperationStopped,
                    $"VM '{vm.Name}' was not ready within {timeout.TotalSeconds:0.#} s ({(pattern is null ? "no SSH banner at " + VmSshEndpoint.TryOf(vm) : "console never matched '" + readyPattern + "'")}). {console}") { Target = vm.Name };
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// QMP system_powerdown, wait up to <paramref name="timeout"/>, then SIGKILL (or SIGKILL at once with
    /// <paramref name="force"/>); then releases tap, dm and loops and records the VM as stopped.
    /// </summary>
    public async Task<FlightVm> StopAsync(string name, TimeSpan timeout, bool force, Action<string>? verbose, CancellationToken ct)
    {
        var vm = _store.Get(name);
        using var held = await VmLock.AcquireAsync(_paths, vm, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        var d = HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current);
        if (d.Error is not null && !force) throw d.Error;
        var process = d.Process;
        if (process is not null && !force)
        {
            try
            {
                // Halted CPUs cannot answer the power button: let the guest run to shut down.
                if (vm.State == VmState.Paused) await QmpClient.ExecuteAsync(vm.QmpSocketPath, "cont", TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                await QmpClient.ExecuteAsync(vm.QmpSocketPath, "system_powerdown", TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                verbose?.Invoke($"{vm.Name}: sent system_powerdown, waiting up to {timeout.TotalSeconds:0.#} s");
                if (await ProcessSignal.WaitForExitAsync(process, timeout, ct).ConfigureAwait(false)) process = null;
                else verbose?.Invoke($"{vm.Name}: the guest did not power off in time; killing qemu");
            }
            catch (VmToolsException e)
            {
                verbose?.Invoke($"{vm.Name}: {e.Message}; killing qemu");
            }
        }

        var errors = await VmTeardown.ReleaseAsync(_runner, vm, d.Handles, process, ct).ConfigureAwait(false);
        if (errors.Count > 0)
        {
            var message = "Teardown failed: " + string.Join("; ", errors);
            _store.SetState(vm, VmState.Broken, message);
            throw new VmToolsException("VmTeardownFailed", FailureKind.InvalidOperation, $"VM '{vm.Name}': {message}") { Target = vm.Name };
        }

        return _store.SetState(vm, VmState.Stopped, null);
    }

    /// <summary>Resets the guest at once (QMP system_reset, the reset button): it reboots in the same qemu, overlay and handles. A paused VM stays paused.</summary>
    public Task<FlightVm> RestartAsync(string name, CancellationToken ct) => ControlLiveAsync(name, "system_reset", null, ct);

    /// <summary>Halts the guest's CPUs (QMP stop); qemu and its memory stay, the record says Paused.</summary>
    public Task<FlightVm> SuspendAsync(string name, CancellationToken ct) => ControlLiveAsync(name, "stop", VmState.Paused, ct);

    /// <summary>Lets a paused guest run again (QMP cont); the record says Running.</summary>
    public Task<FlightVm> ResumeAsync(string name, CancellationToken ct) => ControlLiveAsync(name, "cont", VmState.Running, ct);

    /// <summary>One QMP command to a VM whose qemu is alive (by the liveness rule), under its lock, then the state it leads to recorded.</summary>
    private async Task<FlightVm> ControlLiveAsync(string name, string command, VmState? after, CancellationToken ct)
    {
        var vm = _store.Get(name);
        using var held = await VmLock.AcquireAsync(_paths, vm, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        vm = _store.Get(name);
        var d = HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current);
        if (!d.Alive)
        {
            throw new VmToolsException("VmNotRunning", FailureKind.InvalidOperation, $"VM '{vm.Name}' has no running qemu (state {vm.State}); there is no guest to {command.Replace('_', ' ')}.") { Target = vm.Name };
        }

        await QmpClient.ExecuteAsync(vm.QmpSocketPath, command, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        return after is { } state && state != vm.State ? _store.SetState(vm, state, null) : vm;
    }

    /// <summary>Stops the VM if needed, then deletes its directory and its record; returns the record as it was last.</summary>
    public async Task<FlightVm> RemoveAsync(string name, bool force, CancellationToken ct)
    {
        var vm = _store.Get(name);
        var d = HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current);
        if (d.Alive && !force)
        {
            throw new VmToolsException("VmRunning", FailureKind.ResourceBusy, $"VM '{vm.Name}' is running; stop it first or use -Force.") { Target = vm.Name };
        }

        if (d.Alive || d.Handles is { IsEmpty: false } || d.Error is not null)
        {
            await StopAsync(name, TimeSpan.Zero, force: true, null, ct).ConfigureAwait(false);
        }

        using var held = await VmLock.AcquireAsync(_paths, vm, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        var last = _store.Find(name) ?? vm; // as the stop above left it
        HandleStore.Clear(vm);
        if (Directory.Exists(vm.Directory)) Directory.Delete(vm.Directory, recursive: true);
        _store.Delete(vm);
        AtomicFile.TryDelete(VmLock.PathFor(_paths, vm.Id));
        // The address is free again once the record is gone: its lease leaves the DHCP server.
        if (vm is { IPAddress: not null, BridgeName: { } bridge }) await _network.ReleaseAddressAsync(bridge, ct).ConfigureAwait(false);
        return last;
    }

    public VmHandleReport Handles(string name)
    {
        var vm = _store.Get(name);
        return HandleDiscovery.Report(vm, HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current), _paths);
    }

    /// <summary>Names the accelerator and the way out of a silent guest.</summary>
    private static string SilentConsoleHint(FlightVm vm) => vm.Accelerator switch
    {
        VmAccelerator.Kvm => "with KVM. If this host's KVM cannot run the guest (nested or PVM-backed /dev/kvm), start it with -Accelerator Tcg (or VMTOOLS_ACCELERATOR=tcg).",
        VmAccelerator.Tcg => "with TCG (software emulation). Check that the guest's kernel writes to ttyS0 (console=ttyS0) and that the host is not overloaded.",
        _ => "(accelerator not recorded). Check the kernel's console= argument, or try -Accelerator Tcg.",
    };

    public static string ConsoleTail(FlightVm vm, int chars = 600)
    {
        try
        {
            var text = File.ReadAllText(vm.ConsoleLogPath);
            return text.Length <= chars ? text : "…" + text[^chars..];
        }
        catch (IOException)
        {
            return "(no console log)";
        }
    }

    private static long ReadNew(string path, long from, StringBuilder into)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            if (f.Length <= from) return from;
            f.Position = from;
            var buffer = new byte[f.Length - from];
            f.ReadExactly(buffer);
            into.Append(Encoding.UTF8.GetString(buffer));
            return f.Length;
        }
        catch (FileNotFoundException)
        {
            return from;
        }
    }

    /// <summary>
    /// How long one probe waits for the banner once connected. A guest's sshd under TCG on a busy host can
    /// take seconds to answer; short probes abandoned one after another pile up unauthenticated sessions
    /// until sshd refuses new ones (MaxStartups), so a probe waits as long as a real client would.
    /// </summary>
    private static readonly TimeSpan BannerPatience = TimeSpan.FromSeconds(15);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static async Task<bool> SshBannerAsync(VmSshEndpoint endpoint, TimeSpan patience, CancellationToken ct)
    {
        if (patience <= TimeSpan.Zero) return false;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(patience);
            using var client = new TcpClient();
            await client.ConnectAsync(System.Net.IPAddress.Parse(endpoint.Host), endpoint.Port, cts.Token).ConfigureAwait(false);
            var buffer = new byte[4];
            var stream = client.GetStream();
            var read = 0;
            while (read < 4)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), cts.Token).ConfigureAwait(false);
                if (n == 0) return false;
                read += n;
            }

            return Encoding.ASCII.GetString(buffer) == "SSH-";
        }
        catch (Exception e) when (e is SocketException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return false;
        }
    }

    internal static bool IsRoot() => File.ReadAllText("/proc/self/status").Contains("\nUid:\t0\t", StringComparison.Ordinal);
}
