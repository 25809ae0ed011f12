using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using VmTools.Core.State;

namespace VmTools.Core.Vms;

/// <summary>
/// The durable VM records in the state database. Allocation of names, SSH ports, MACs, taps,
/// bridge addresses and directories happens in one IMMEDIATE transaction, so concurrent pwsh processes queue on the
/// database lock instead of handing out the same port twice.
/// </summary>
public sealed class VmStore
{
    private const string Columns = "id, name, state, image_path, disk_mode, overlay_path, directory, console_log, qmp_socket, network, ssh_port, mac_address, tap_name, bridge_name, memory_mb, cpu_count, kernel_path, initrd_path, kernel_args, cloud_init_path, volume_paths, created_at, last_error, accelerator, ip_address";
    private readonly StateDb _db;
    private readonly VmToolsPaths _paths;
    private readonly BridgeStore _bridges;

    public VmStore(StateDb db, VmToolsPaths paths)
    {
        _db = db;
        _paths = paths;
        _bridges = new BridgeStore(db, paths);
    }

    /// <summary>Allocates and inserts <see cref="VmStartRequest.Count"/> records in state Starting.</summary>
    public IReadOnlyList<FlightVm> Allocate(VmStartRequest request)
    {
        try
        {
            return _db.InTransaction(tx =>
            {
                var created = new List<FlightVm>();
                var tapPrefix = VmNaming.TapPrefix(_paths);
                var bridge = request.Network == VmNetworkMode.Tap ? _bridges.Claim(tx, request.BridgeName) : null;
                for (var i = 1; i <= request.Count; i++)
                {
                    var id = NextFree(tx, "id", () => VmNaming.NewId());
                    var name = request.Name is null ? "vm-" + id : request.Count == 1 ? request.Name : $"{request.Name}-{i}";
                    if (Exists(tx, "name", name))
                    {
                        throw new VmToolsException("VmNameInUse", FailureKind.ResourceExists, $"A VM named '{name}' already exists; remove it or pick another -Name.") { Target = name };
                    }

                    var dir = Path.Combine(_paths.VmDirectory, id);
                    var qmp = Path.Combine(dir, "qmp.sock");
                    if (System.Text.Encoding.UTF8.GetByteCount(qmp) > 107)
                    {
                        throw new VmToolsException("VmSocketPathTooLong", FailureKind.InvalidArgument,
                            $"The QMP socket path '{qmp}' exceeds the 107-byte limit of Unix sockets; use a shorter VMTOOLS_HOME.") { Target = qmp };
                    }

                    var vm = new FlightVm
                    {
                        Name = name,
                        Id = id,
                        State = VmState.Starting,
                        ImagePath = request.ImagePath,
                        DiskMode = request.DiskMode,
                        OverlayPath = Path.Combine(dir, request.DiskMode == VmDiskMode.Overlay ? "overlay.qcow2" : "cow.img"),
                        Directory = dir,
                        ConsoleLogPath = Path.Combine(dir, "console.log"),
                        QmpSocketPath = qmp,
                        Network = request.Network,
                        SshPort = request.Network == VmNetworkMode.User ? NextFreePort(tx) : null,
                        MacAddress = request.MacAddress is { } mac ? Unused(tx, mac) : NextFree(tx, "mac_address", MacAddresses.New),
                        TapName = request.Network == VmNetworkMode.Tap ? NextFreeTap(tx, tapPrefix) : null,
                        BridgeName = request.Network == VmNetworkMode.Tap ? request.BridgeName : null,
                        IPAddress = bridge is null ? null : _bridges.ReserveAddress(tx, bridge),
                        Accelerator = request.Accelerator is VmAccelerator.Auto ? null : request.Accelerator,
                        MemoryMB = request.MemoryMB,
                        CpuCount = request.CpuCount,
                        KernelPath = request.KernelPath,
                        InitrdPath = request.InitrdPath,
                        KernelArgs = request.KernelArgs,
                        CloudInitPath = request.CloudInitPath,
                        VolumePaths = request.VolumePaths,
                        CreatedAt = DateTimeOffset.UtcNow,
                    };
                    Insert(tx, vm);
                    created.Add(vm);
                }

                return (IReadOnlyList<FlightVm>)created;
            });
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            // The UNIQUE constraints are the backstop behind the checks above.
            throw new VmToolsException("VmAllocationConflict", FailureKind.ResourceExists, "Another process allocated the same VM name, port, MAC, tap or address at the same moment: " + e.Message, e);
        }
    }

    public FlightVm? Find(string name)
    {
        using var cmd = _db.Command($"SELECT {Columns} FROM vms WHERE name = $n", null, ("$n", name));
        using var r = cmd.ExecuteReader();
        return r.Read() ? Read(r) : null;
    }

    public FlightVm Get(string name) => Find(name)
        ?? throw new VmToolsException("VmNotFound", FailureKind.NotFound, $"No VM named '{name}'. Get-FlightVm lists the VMs this state directory knows.") { Target = name };

    public IReadOnlyList<FlightVm> List()
    {
        using var cmd = _db.Command($"SELECT {Columns} FROM vms ORDER BY created_at, name");
        using var r = cmd.ExecuteReader();
        var list = new List<FlightVm>();
        while (r.Read()) list.Add(Read(r));
        return list;
    }

    public FlightVm SetState(FlightVm vm, VmState state, string? lastError)
    {
        _db.Execute("UPDATE vms SET state = $s, last_error = $e, updated_at = $t WHERE id = $id", null,
            ("$s", state.ToString()), ("$e", lastError), ("$t", DateTimeOffset.UtcNow.ToString("O")), ("$id", vm.Id));
        return vm with { State = state, LastError = lastError };
    }

    public void Delete(FlightVm vm) => _db.Execute("DELETE FROM vms WHERE id = $id", null, ("$id", vm.Id));

    /// <summary>Inserts a record as is; used by tests and benchmarks that need many records without booting them.</summary>
    public void Insert(SqliteTransaction? tx, FlightVm vm)
    {
        _db.Execute($"INSERT INTO vms ({Columns}, updated_at) VALUES ($id, $name, $state, $image, $disk, $overlay, $dir, $log, $qmp, $net, $port, $mac, $tap, $bridge, $mem, $cpu, $kernel, $initrd, $kargs, $ci, $vols, $created, $err, $accel, $ip, $created)", tx,
            ("$id", vm.Id), ("$name", vm.Name), ("$state", vm.State.ToString()), ("$image", vm.ImagePath), ("$disk", vm.DiskMode.ToString()),
            ("$overlay", vm.OverlayPath), ("$dir", vm.Directory), ("$log", vm.ConsoleLogPath), ("$qmp", vm.QmpSocketPath), ("$net", vm.Network.ToString()),
            ("$port", vm.SshPort), ("$mac", vm.MacAddress), ("$tap", vm.TapName), ("$bridge", vm.BridgeName), ("$mem", vm.MemoryMB), ("$cpu", vm.CpuCount),
            ("$kernel", vm.KernelPath), ("$initrd", vm.InitrdPath), ("$kargs", vm.KernelArgs), ("$ci", vm.CloudInitPath),
            ("$vols", JsonSerializer.Serialize(vm.VolumePaths)), ("$created", vm.CreatedAt.ToString("O")), ("$err", vm.LastError), ("$accel", vm.Accelerator?.ToString()), ("$ip", vm.IPAddress));
    }

    private static FlightVm Read(SqliteDataReader r)
    {
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        return new FlightVm
        {
            Id = r.GetString(0),
            Name = r.GetString(1),
            State = Enum.Parse<VmState>(r.GetString(2)),
            ImagePath = r.GetString(3),
            DiskMode = Enum.Parse<VmDiskMode>(r.GetString(4)),
            OverlayPath = r.GetString(5),
            Directory = r.GetString(6),
            ConsoleLogPath = r.GetString(7),
            QmpSocketPath = r.GetString(8),
            Network = Enum.Parse<VmNetworkMode>(r.GetString(9)),
            SshPort = r.IsDBNull(10) ? null : r.GetInt32(10),
            MacAddress = r.GetString(11),
            TapName = S(12),
            BridgeName = S(13),
            MemoryMB = r.GetInt32(14),
            CpuCount = r.GetInt32(15),
            KernelPath = S(16),
            InitrdPath = S(17),
            KernelArgs = S(18),
            CloudInitPath = S(19),
            VolumePaths = JsonSerializer.Deserialize<string[]>(r.GetString(20)) ?? Array.Empty<string>(),
            CreatedAt = DateTimeOffset.Parse(r.GetString(21), System.Globalization.CultureInfo.InvariantCulture),
            LastError = S(22),
            Accelerator = S(23) is { } accel ? Enum.Parse<VmAccelerator>(accel) : null,
            IPAddress = S(24),
        };
    }

    private bool Exists(SqliteTransaction tx, string column, object value)
    {
        using var cmd = _db.Command($"SELECT 1 FROM vms WHERE {column} = $v LIMIT 1", tx, ("$v", value));
        return cmd.ExecuteScalar() is not null;
    }

    /// <summary>A requested MAC: refused while another record holds it (most often, the same seed used twice).</summary>
    private string Unused(SqliteTransaction tx, string mac)
    {
        using var cmd = _db.Command("SELECT name FROM vms WHERE mac_address = $v LIMIT 1", tx, ("$v", mac));
        if (cmd.ExecuteScalar() is string holder)
        {
            throw new VmToolsException("VmMacAddressInUse", FailureKind.ResourceExists,
                $"MAC {mac} belongs to VM '{holder}'. A seed names one VM's NIC: make a new seed (New-CloudInitConfig | New-CloudInitIso) or remove '{holder}'.") { Target = mac };
        }

        return mac;
    }

    private string NextFree(SqliteTransaction tx, string column, Func<string> candidate)
    {
        for (var attempt = 0; attempt < 64; attempt++)
        {
            var c = candidate();
            if (!Exists(tx, column, c)) return c;
        }

        throw new VmToolsException("VmAllocationExhausted", FailureKind.LimitsExceeded, $"Could not find a free {column}.");
    }

    /// <summary>
    /// A port the kernel just handed out as free (bind to port 0), and not recorded for another VM.
    /// Asking the kernel keeps VMs of different state directories apart as well.
    /// </summary>
    private int NextFreePort(SqliteTransaction tx)
    {
        for (var attempt = 0; attempt < 64; attempt++)
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            if (!Exists(tx, "ssh_port", port)) return port;
        }

        throw new VmToolsException("VmAllocationExhausted", FailureKind.LimitsExceeded, "Could not find a free host port for SSH forwarding.");
    }

    private string NextFreeTap(SqliteTransaction tx, string prefix)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        using (var cmd = _db.Command("SELECT tap_name FROM vms WHERE tap_name IS NOT NULL", tx))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) used.Add(r.GetString(0));
        }

        for (var n = 0; n < 10_000; n++)
        {
            var name = prefix + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // A leftover interface of that name (another run, a crash) is skipped, not reused.
            if (!used.Contains(name) && !Directory.Exists("/sys/class/net/" + name)) return name;
        }

        throw new VmToolsException("VmAllocationExhausted", FailureKind.LimitsExceeded, $"All tap names with prefix '{prefix}' are taken.");
    }
}
