namespace VmTools;

/// <summary>The creation time stamped into a published image: SOURCE_DATE_EPOCH when set (reproducible builds), else the disk's mtime.</summary>
internal static class PublishTime
{
    public static DateTimeOffset For(string diskPath)
    {
        if (long.TryParse(Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH"), out var epoch)) return DateTimeOffset.FromUnixTimeSeconds(epoch);
        var mtime = File.GetLastWriteTimeUtc(diskPath);
        return new DateTimeOffset(mtime.Ticks - mtime.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
    }
}
