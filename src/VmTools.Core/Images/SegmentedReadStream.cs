namespace VmTools.Core.Images;

/// <summary>
/// A read-only, seekable view of a layer assembled from its pieces (header bytes in memory, the disk's bytes
/// in their file, the trailer in memory), so the tar reader can validate the whole layer without a second copy.
/// </summary>
internal sealed class SegmentedReadStream : Stream
{
    private readonly (long Start, long Length, ReadOnlyMemory<byte>? Bytes, FileStream? File)[] _segments;
    private long _position;

    public SegmentedReadStream(ReadOnlyMemory<byte> head, FileStream middle, ReadOnlyMemory<byte> tail)
    {
        _segments = new (long, long, ReadOnlyMemory<byte>?, FileStream?)[]
        {
            (0, head.Length, head, null),
            (head.Length, middle.Length, null, middle),
            (head.Length + middle.Length, tail.Length, tail, null),
        };
        Length = head.Length + middle.Length + tail.Length;
    }

    public override long Length { get; }

    public override long Position { get => _position; set => _position = value; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= Length || buffer.Length == 0) return 0;
        foreach (var (start, length, bytes, file) in _segments)
        {
            if (_position < start || _position >= start + length) continue;
            var within = _position - start;
            var n = (int)Math.Min(buffer.Length, length - within);
            if (bytes is { } b)
            {
                b.Span.Slice((int)within, n).CopyTo(buffer);
            }
            else
            {
                n = RandomAccess.Read(file!.SafeFileHandle, buffer[..n], within);
            }

            _position += n;
            return n;
        }

        return 0;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        _position = origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => Length + offset };
        return _position;
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
