namespace VmTools.Core.Host;

/// <summary>
/// Passes reads through and reports the running byte total, for progress on streams of unknown length.
/// A zero-length read is answered here and never reaches the inner stream: Docker.DotNet's chunked
/// response stream treats one as end of stream and throws (the tar reader issues them between entries).
/// </summary>
public sealed class CountingReadStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly IProgress<long>? _total;

    public CountingReadStream(Stream inner, IProgress<long>? total)
    {
        _inner = inner;
        _total = total;
    }

    public long BytesRead { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => count == 0 ? 0 : Count(_inner.Read(buffer, offset, count));

    public override int Read(Span<byte> buffer) => buffer.Length == 0 ? 0 : Count(_inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => buffer.Length == 0 ? 0 : Count(await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Count(int n)
    {
        if (n > 0)
        {
            BytesRead += n;
            _total?.Report(BytesRead);
        }

        return n;
    }

    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
