using System.Text;
using System.Text.RegularExpressions;

namespace VmTools.Core.Vms;

/// <summary>How a console read ended.</summary>
public enum ConsoleReadEnd
{
    /// <summary>Not following: everything written so far was read.</summary>
    EndOfLog,

    /// <summary>A line matched the -Until pattern (that line was the last one emitted).</summary>
    UntilMatched,

    /// <summary>Following ended because qemu is not running (or never was): nothing more can be written.</summary>
    QemuExited,

    /// <summary>Following ended at the timeout.</summary>
    TimedOut,
}

/// <summary>What to read from a VM's serial console log.</summary>
public sealed record ConsoleReadRequest
{
    /// <summary>Only the last N lines already written (then, when following, everything new); null: all of them.</summary>
    public int? Tail { get; init; }

    /// <summary>Keep reading as qemu writes, like <c>Get-Content -Wait</c>, until qemu exits, the pattern matches or the timeout.</summary>
    public bool Follow { get; init; }

    /// <summary>Stop after the first line this pattern matches.</summary>
    public string? Until { get; init; }

    /// <summary>Stop following after this long; null: no limit.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>
/// Reads a VM's serial console log (it stays until Remove-FlightVm, so stopped VMs have one too) as
/// lines, and optionally follows it while qemu writes. Whether qemu still runs is decided by
/// <see cref="HandleDiscovery"/>, the same rule the waiters use, so a dead qemu ends the follow instead
/// of leaving it hanging. A partial last line is held back while qemu may still complete it.
/// </summary>
public static class ConsoleFollower
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(150);

    public static Regex? ParseUntil(string? until)
    {
        if (until is null) return null;
        try
        {
            return new Regex(until, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new VmToolsException("VmConsolePatternInvalid", FailureKind.InvalidArgument, $"-Until is not a valid regex: {e.Message}", e) { Target = until };
        }
    }

    /// <summary>Emits the console's lines to <paramref name="line"/> and says why it stopped. With a pattern that never matched, a stop for any other reason is an error.</summary>
    public static async Task<ConsoleReadEnd> ReadAsync(FlightVm vm, ConsoleReadRequest request, Action<string> line, CancellationToken ct)
    {
        if (request.Tail is < 0) throw new VmToolsException("VmConsoleTailInvalid", FailureKind.InvalidArgument, $"-Tail must be 0 or more, not {request.Tail}.") { Target = request.Tail };
        var until = ParseUntil(request.Until);
        var deadline = request.Timeout is { } t ? DateTime.UtcNow + t : (DateTime?)null;
        var reader = new LineReader(vm.ConsoleLogPath);

        var first = reader.ReadCompleteLines();
        if (!request.Follow && reader.TakePartialLine() is { } last) first.Add(last);
        if (request.Tail is { } tail) first = first.Skip(Math.Max(0, first.Count - tail)).ToList();
        if (Emit(first, until, line)) return ConsoleReadEnd.UntilMatched;

        var end = ConsoleReadEnd.EndOfLog;
        if (request.Follow)
        {
            while (true)
            {
                // Liveness first, then read: whatever qemu wrote before it died is still read below.
                var alive = HandleDiscovery.Discover(vm, ProcessTable.Scan(), BootId.Current).Alive;
                if (Emit(reader.ReadCompleteLines(), until, line)) return ConsoleReadEnd.UntilMatched;
                if (!alive)
                {
                    end = ConsoleReadEnd.QemuExited;
                    break;
                }

                if (deadline is { } d && DateTime.UtcNow >= d)
                {
                    end = ConsoleReadEnd.TimedOut;
                    break;
                }

                await Task.Delay(PollInterval, ct).ConfigureAwait(false);
            }
        }

        // Nothing more will complete the last line (qemu is gone) or the caller stops here.
        if (request.Follow && reader.TakePartialLine() is { } partial && Emit(new[] { partial }, until, line)) return ConsoleReadEnd.UntilMatched;
        if (until is not null && request.Follow)
        {
            var why = end == ConsoleReadEnd.TimedOut ? $"within {request.Timeout!.Value.TotalSeconds:0.#} s" : "before qemu exited";
            throw new VmToolsException("VmConsoleUntilNotSeen", FailureKind.OperationStopped, $"VM '{vm.Name}': no console line matched '{request.Until}' {why}.") { Target = vm.Name };
        }

        return end;
    }

    private static bool Emit(IEnumerable<string> lines, Regex? until, Action<string> line)
    {
        foreach (var l in lines)
        {
            line(l);
            if (until is not null && until.IsMatch(l)) return true;
        }

        return false;
    }

    /// <summary>Reads the log incrementally from where it left off, splitting on '\n' and dropping the serial line's '\r'.</summary>
    private sealed class LineReader
    {
        private readonly string _path;
        private readonly StringBuilder _partial = new();
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private long _offset;

        public LineReader(string path) => _path = path;

        public List<string> ReadCompleteLines()
        {
            var lines = new List<string>();
            FileStream f;
            try
            {
                f = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return lines; // not created yet (starting) or removed: nothing to read
            }

            using (f)
            {
                if (f.Length < _offset) _offset = 0; // truncated (a restart with a fresh log): read it anew
                f.Position = _offset;
                var bytes = new byte[64 * 1024];
                var chars = new char[Encoding.UTF8.GetMaxCharCount(bytes.Length)];
                int n;
                while ((n = f.Read(bytes, 0, bytes.Length)) > 0)
                {
                    _offset += n;
                    var count = _decoder.GetChars(bytes, 0, n, chars, 0);
                    for (var i = 0; i < count; i++)
                    {
                        if (chars[i] == '\n')
                        {
                            lines.Add(Clean(_partial));
                            _partial.Clear();
                        }
                        else
                        {
                            _partial.Append(chars[i]);
                        }
                    }
                }
            }

            return lines;
        }

        public string? TakePartialLine()
        {
            if (_partial.Length == 0) return null;
            var last = Clean(_partial);
            _partial.Clear();
            return last.Length == 0 ? null : last;
        }

        private static string Clean(StringBuilder line) => line.ToString().TrimEnd('\r');
    }
}
