using VmTools.Core.Host;
using System.Security.Cryptography;

namespace VmTools.Core.Images;

/// <summary>Passes reads through while hashing them, so a blob is verified in the same pass that consumes it.</summary>
internal sealed class HashingReadStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly Action<long>? _progress;

    public HashingReadStream(Stream inner, Action<long>? progress)
    {
        _inner = inner;
        _progress = progress;
    }

    public long BytesRead { get; private set; }

    public byte[] GetHash() => _hash.GetCurrentHash();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        Count(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Count(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Reads to the end so the hash covers every byte served (trailing padding included).</summary>
    public async Task DrainAsync(CancellationToken ct)
    {
        var buffer = new byte[1 << 16];
        while (await ReadAsync(buffer, ct).ConfigureAwait(false) > 0) { }
    }

    private void Count(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0) return;
        _hash.AppendData(data);
        BytesRead += data.Length;
        _progress?.Invoke(data.Length);
    }

    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _hash.Dispose(); _inner.Dispose(); }
        base.Dispose(disposing);
    }
}
