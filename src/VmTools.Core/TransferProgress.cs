namespace VmTools.Core;

/// <summary>A snapshot of a long transfer, reported through <see cref="IProgress{T}"/> for WriteProgress.</summary>
public sealed record TransferProgress(string Activity, string Item, long BytesDone, long? BytesTotal, TimeSpan Elapsed)
{
    public double BytesPerSecond => Elapsed.TotalSeconds > 0 ? BytesDone / Elapsed.TotalSeconds : 0;

    public int? PercentComplete => BytesTotal is > 0 ? (int)Math.Min(100, BytesDone * 100 / BytesTotal.Value) : null;
}
