using System.Net;

namespace VmTools.Core.Registry;

/// <summary>An HTTP body produced by a writer callback, so a multi-GB layer is streamed, never buffered.</summary>
internal sealed class StreamingContent : HttpContent
{
    private readonly Func<Stream, CancellationToken, Task> _write;
    private readonly long? _length;

    public StreamingContent(Func<Stream, CancellationToken, Task> write, long? length)
    {
        _write = write;
        _length = length;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => _write(stream, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) => _write(stream, cancellationToken);

    protected override bool TryComputeLength(out long length)
    {
        length = _length ?? -1;
        return _length is not null;
    }
}
