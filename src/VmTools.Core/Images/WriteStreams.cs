using VmTools.Core.Host;
using System.Security.Cryptography;

namespace VmTools.Core.Images;

/// <summary>A write-only sink that only hashes: computes a layer digest without storing the layer.</summary>
internal sealed class HashingWriteSink : WriteOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public byte[] GetHash() => _hash.GetCurrentHash();

    public override void Write(byte[] buffer, int offset, int count) => _hash.AppendData(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => _hash.AppendData(buffer);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _hash.AppendData(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        _hash.AppendData(buffer, offset, count);
        return Task.CompletedTask;
    }


    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Counts bytes written through to another stream (upload progress).</summary>
internal sealed class CountingWriteStream : WriteOnlyStream
{
    private readonly Stream _inner;
    private readonly Action<long> _count;

    public CountingWriteStream(Stream inner, Action<long> count)
    {
        _inner = inner;
        _count = count;
    }

    public override void Write(byte[] buffer, int offset, int count) { _inner.Write(buffer, offset, count); _count(count); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _count(buffer.Length);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => _inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    // The HTTP body stream belongs to HttpClient; closing it here would cut the request short.
    protected override void Dispose(bool disposing) { }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Writes to two streams at once (compressed output and the uncompressed tar's hash).</summary>
internal sealed class TeeWriteStream : WriteOnlyStream
{
    private readonly Stream _a;
    private readonly Stream _b;

    public TeeWriteStream(Stream a, Stream b)
    {
        _a = a;
        _b = b;
    }

    public override void Write(byte[] buffer, int offset, int count) { _a.Write(buffer, offset, count); _b.Write(buffer, offset, count); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _a.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await _b.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() { _a.Flush(); _b.Flush(); }
}
