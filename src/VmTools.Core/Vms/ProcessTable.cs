using System.Globalization;

namespace VmTools.Core.Vms;

/// <summary>One process as /proc shows it: enough to tell our qemu from a recycled PID.</summary>
public sealed record ProcessEntry(int Pid, ulong StartTime, string CommandLine);

/// <summary>
/// A snapshot of /proc: one directory scan serves a whole reconcile, instead of a pgrep per VM.
/// Processes that exit while being read are simply absent.
/// </summary>
public sealed class ProcessTable
{
    private readonly Dictionary<int, ProcessEntry> _byPid;
    private Dictionary<string, ProcessEntry>? _byQmpSocket;

    private ProcessTable(Dictionary<int, ProcessEntry> byPid) => _byPid = byPid;

    public int Count => _byPid.Count;

    public IEnumerable<ProcessEntry> Processes => _byPid.Values;

    /// <summary>Reads every /proc/&lt;pid&gt; once: stat for the start time, cmdline for the arguments.</summary>
    public static ProcessTable Scan(string procRoot = "/proc")
    {
        var table = new Dictionary<int, ProcessEntry>();
        foreach (var dir in Directory.EnumerateDirectories(procRoot))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            if (Read(procRoot, pid) is { } entry) table[pid] = entry;
        }

        return new ProcessTable(table);
    }

    /// <summary>A table of just these PIDs: cheap when one VM is asked about.</summary>
    public static ProcessTable Probe(IEnumerable<int> pids, string procRoot = "/proc")
    {
        var table = new Dictionary<int, ProcessEntry>();
        foreach (var pid in pids.Where(p => p > 0).Distinct())
        {
            if (Read(procRoot, pid) is { } entry) table[pid] = entry;
        }

        return new ProcessTable(table);
    }

    public ProcessEntry? Get(int pid) => _byPid.GetValueOrDefault(pid);

    /// <summary>The process whose argv names <paramref name="qmpSocket"/> (qemu's -qmp argument), if any.</summary>
    public ProcessEntry? FindByQmpSocket(string qmpSocket)
    {
        _byQmpSocket ??= BuildQmpIndex();
        return _byQmpSocket.GetValueOrDefault(qmpSocket);
    }

    /// <summary>Socket path → newest process naming it in a <c>-qmp unix:PATH,…</c> argument; built once per snapshot.</summary>
    private Dictionary<string, ProcessEntry> BuildQmpIndex()
    {
        var index = new Dictionary<string, ProcessEntry>(StringComparer.Ordinal);
        foreach (var p in _byPid.Values)
        {
            var at = p.CommandLine.IndexOf("-qmp unix:", StringComparison.Ordinal);
            if (at < 0) continue;
            var start = at + "-qmp unix:".Length;
            var end = p.CommandLine.IndexOf(',', start);
            if (end < 0) continue;
            var socket = p.CommandLine[start..end];
            if (!index.TryGetValue(socket, out var known) || known.StartTime < p.StartTime) index[socket] = p;
        }

        return index;
    }

    public static bool NamesQmpSocket(ProcessEntry process, string qmpSocket)
        => process.CommandLine.Contains("unix:" + qmpSocket + ",", StringComparison.Ordinal);

    /// <summary>Reads one process; null when it is gone (or a kernel thread with no cmdline).</summary>
    public static ProcessEntry? Read(string procRoot, int pid)
    {
        try
        {
            var stat = File.ReadAllText($"{procRoot}/{pid}/stat");
            // comm may hold spaces and parentheses; the fields after the LAST ')' are fixed.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
            var start = ulong.Parse(rest[19], CultureInfo.InvariantCulture);
            var cmdline = File.ReadAllText($"{procRoot}/{pid}/cmdline").Replace('\0', ' ');
            if (rest[0] == "Z") return null; // a zombie is dead, whatever its parent has not reaped yet
            return new ProcessEntry(pid, start, cmdline);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
