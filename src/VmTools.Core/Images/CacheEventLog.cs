using VmTools.Core.State;

namespace VmTools.Core.Images;

/// <summary>
/// Records cache outcomes and bytes moved in the state database, and sums them for
/// Get-Qcow2CacheStatistics (the metrics the reference design only planned).
/// </summary>
public sealed class CacheEventLog
{
    private readonly StateDb _db;

    public CacheEventLog(StateDb db) => _db = db;

    public void Record(CacheEventKind kind, string? reference, long bytes, TimeSpan duration, string? detail = null)
        => _db.Execute("INSERT INTO events(at, kind, reference, bytes, duration_ms, detail) VALUES ($at, $k, $r, $b, $d, $x)", null,
            ("$at", DateTimeOffset.UtcNow.ToString("O")), ("$k", kind.ToString().ToLowerInvariant()), ("$r", reference),
            ("$b", bytes), ("$d", (long)duration.TotalMilliseconds), ("$x", detail));

    public CacheStatistics Summarize(DateTimeOffset? since = null)
    {
        using var cmd = _db.Command("""
            SELECT kind, COUNT(*), COALESCE(SUM(bytes), 0), COALESCE(SUM(duration_ms), 0), MIN(at), MAX(at)
            FROM events WHERE kind IN ('hit','pulled','miss','built','pushed','evicted') AND ($since IS NULL OR at >= $since)
            GROUP BY kind
            """, null, ("$since", since?.ToUniversalTime().ToString("O")));
        using var r = cmd.ExecuteReader();
        var counts = new Dictionary<string, (long Count, long Bytes, long Ms)>();
        DateTimeOffset? first = null, last = null;
        while (r.Read())
        {
            counts[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2), r.GetInt64(3));
            var f = DateTimeOffset.Parse(r.GetString(4), System.Globalization.CultureInfo.InvariantCulture);
            var l = DateTimeOffset.Parse(r.GetString(5), System.Globalization.CultureInfo.InvariantCulture);
            first = first is null || f < first ? f : first;
            last = last is null || l > last ? l : last;
        }

        (long Count, long Bytes, long Ms) Get(string k) => counts.TryGetValue(k, out var v) ? v : default;
        var hit = Get("hit"); var pulled = Get("pulled"); var miss = Get("miss"); var built = Get("built"); var pushed = Get("pushed"); var evicted = Get("evicted");
        return new CacheStatistics(hit.Count, pulled.Count, miss.Count, built.Count, pushed.Count,
            pulled.Bytes, pushed.Bytes, TimeSpan.FromMilliseconds(pulled.Ms), TimeSpan.FromMilliseconds(built.Ms), first, last)
        {
            Evictions = evicted.Count,
            BytesFreed = evicted.Bytes,
        };
    }
}
