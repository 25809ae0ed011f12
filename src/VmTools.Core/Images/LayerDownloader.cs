using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using VmTools.Core.Host;
using VmTools.Core.Registry;

namespace VmTools.Core.Images;

/// <summary>
/// Brings one layer's disk into a work folder and proves it is the blob the manifest named.
/// Uncompressed layers take the fast path: the disk's bytes are fetched with parallel ranged GETs straight
/// into the disk file (no tar copy, no second write), hashed in order as chunks land, and a journal lets an
/// interrupted pull resume. Compressed layers (podman's gzip, zstd) stream through one GET instead.
/// </summary>
internal sealed class LayerDownloader
{
    private const int ProbeBytes = 64 * 1024;
    private const long MaxTailInMemory = 256L * 1024 * 1024;
    private const long RangedThreshold = 8L * 1024 * 1024;
    private const string JournalFile = "journal.json";

    private readonly RegistryClient _client;
    private readonly string _repository;
    private readonly Action<long> _progress;
    private readonly Action<string>? _verbose;
    private long _downloaded;

    public LayerDownloader(RegistryClient client, string repository, Action<long> progress, Action<string>? verbose)
    {
        _client = client;
        _repository = repository;
        _progress = progress;
        _verbose = verbose;
    }

    public long BytesDownloaded => Interlocked.Read(ref _downloaded);

    public bool Resumed { get; private set; }

    /// <summary>Fills <paramref name="workDirectory"/> with disk.qcow2 (+ boot files); null when the layer holds no disk.</summary>
    public async Task<ContainerDiskExtractor.Result?> DownloadAsync(OciDescriptor layer, string workDirectory, CancellationToken ct)
    {
        Directory.CreateDirectory(workDirectory);
        try
        {
            if (MediaTypes.CompressionOf(layer.MediaType) == LayerCompression.None && layer.Size >= RangedThreshold)
            {
                var ranged = await TryRangedAsync(layer, workDirectory, ct).ConfigureAwait(false);
                if (ranged.Handled) return ranged.Result;
            }

            return await StreamAsync(layer, workDirectory, ct).ConfigureAwait(false);
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            TryDeleteFolder(workDirectory);
            throw new VmToolsException("CacheDiskFull", FailureKind.WriteError,
                $"The disk holding the image cache ({workDirectory}) is full; the partial download was removed. Free space (or point VMTOOLS_HOME elsewhere) and run again.", e) { Target = workDirectory };
        }
    }

    private async Task<(bool Handled, ContainerDiskExtractor.Result? Result)> TryRangedAsync(OciDescriptor layer, string work, CancellationToken ct)
    {
        var prefix = await GetRangeAsync(layer.Digest, 0, Math.Min(ProbeBytes, layer.Size), ct).ConfigureAwait(false);
        if (prefix is null) return (false, null); // the registry ignores Range
        var located = TarHeaderScanner.FindFile(prefix, LayerEntryPath.IsDisk);
        if (located is null || located.DataOffset > prefix.Length) return (false, null);
        var diskStart = located.DataOffset;
        var diskSize = located.Size;
        var tailStart = diskStart + diskSize;
        if (tailStart > layer.Size || layer.Size - tailStart > MaxTailInMemory) return (false, null);

        var chunkBytes = Math.Max(1L << 20, _client.Options.ChunkBytes);
        var chunkCount = (int)((diskSize + chunkBytes - 1) / chunkBytes);
        var journalPath = Path.Combine(work, JournalFile);
        var diskPath = Path.Combine(work, ImageStore.DiskFileName);
        var journal = Journal.Load(journalPath, layer.Digest, layer.Size, chunkBytes, chunkCount);
        if (journal.Done.Count > 0 && (!File.Exists(diskPath) || new FileInfo(diskPath).Length != diskSize)) journal = Journal.Fresh(layer.Digest, layer.Size, chunkBytes, chunkCount);
        if (journal.Done.Count > 0)
        {
            Resumed = true;
            _verbose?.Invoke($"Resuming {layer.Digest}: {journal.Done.Count} of {chunkCount} chunks already here.");
        }

        var tail = layer.Size > tailStart ? await GetRangeAsync(layer.Digest, tailStart, layer.Size - tailStart, ct).ConfigureAwait(false) : Array.Empty<byte>();
        if (tail is null) return (false, null);

        await using (var disk = new FileStream(diskPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.Asynchronous))
        {
            if (disk.Length != diskSize) disk.SetLength(diskSize);
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var landed = new TaskCompletionSource[chunkCount];
            for (var i = 0; i < chunkCount; i++)
            {
                landed[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (journal.Done.Contains(i)) landed[i].SetResult();
            }

            using var cancelWaits = failed.Token.Register(() => { foreach (var t in landed) t.TrySetCanceled(); });
            var next = -1;
            var journalGate = new object();

            async Task Worker()
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < chunkCount)
                {
                    if (landed[i].Task.IsCompleted) continue;
                    var start = (long)i * chunkBytes;
                    var length = Math.Min(chunkBytes, diskSize - start);
                    await FetchIntoAsync(layer.Digest, diskStart + start, length, disk, start, failed.Token).ConfigureAwait(false);
                    lock (journalGate)
                    {
                        journal.Done.Add(i);
                        journal.Save(journalPath);
                    }

                    landed[i].TrySetResult();
                }
            }

            async Task<byte[]> HashInOrder()
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                hash.AppendData(prefix, 0, (int)diskStart);
                var buffer = new byte[4 << 20];
                for (var i = 0; i < chunkCount; i++)
                {
                    await landed[i].Task.ConfigureAwait(false);
                    var start = (long)i * chunkBytes;
                    var end = Math.Min(start + chunkBytes, diskSize);
                    for (var pos = start; pos < end;)
                    {
                        var n = await RandomAccess.ReadAsync(disk.SafeFileHandle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, end - pos)), pos, failed.Token).ConfigureAwait(false);
                        if (n == 0) throw new EndOfStreamException("The partial disk file is shorter than planned.");
                        hash.AppendData(buffer, 0, n);
                        pos += n;
                    }
                }

                hash.AppendData(tail);
                return hash.GetHashAndReset();
            }

            var workers = Enumerable.Range(0, Math.Max(1, _client.Options.Parallelism)).Select(_ => Task.Run(Worker)).ToList();
            var hasher = Task.Run(HashInOrder);
            try
            {
                await Task.WhenAll(workers).ConfigureAwait(false);
            }
            catch
            {
                failed.Cancel();
                try { await hasher.ConfigureAwait(false); } catch (OperationCanceledException) { }
                throw;
            }

            var digest = ContentDigest.FromHash(await hasher.ConfigureAwait(false)).ToString();
            if (digest != layer.Digest)
            {
                await disk.DisposeAsync().ConfigureAwait(false);
                TryDeleteFolder(work);
                throw Mismatch(layer.Digest, digest);
            }

            await disk.FlushAsync(ct).ConfigureAwait(false);
            using var view = new SegmentedReadStream(prefix.AsMemory(0, (int)diskStart), disk, tail);
            var result = await ContainerDiskExtractor.ExtractAsync(view, work, located.Name, null, ct).ConfigureAwait(false);
            File.Delete(journalPath);
            return (true, result);
        }
    }

    private async Task<ContainerDiskExtractor.Result?> StreamAsync(OciDescriptor layer, string work, CancellationToken ct)
    {
        foreach (var f in Directory.EnumerateFiles(work)) File.Delete(f);
        using var response = await _client.GetBlobAsync(_repository, layer.Digest, null, null, ct).ConfigureAwait(false);
        await using var raw = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using var hashing = new HashingReadStream(raw, n => { Interlocked.Add(ref _downloaded, n); _progress(n); });
        ContainerDiskExtractor.Result? result;
        var compression = MediaTypes.CompressionOf(layer.MediaType);
        await using (Stream tar = compression switch
        {
            LayerCompression.Gzip => new GZipStream(hashing, CompressionMode.Decompress, leaveOpen: true),
            LayerCompression.Zstd => new ZstdSharp.DecompressionStream(hashing, leaveOpen: true),
            _ => new NonClosingStream(hashing),
        })
        {
            try
            {
                result = await ContainerDiskExtractor.ExtractAsync(tar, work, null, null, ct).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                throw new VmToolsException("ImageLayerInvalid", FailureKind.InvalidData, $"Layer {layer.Digest} does not decompress as {compression}: {e.Message}", e) { Target = layer.Digest };
            }
        }

        await hashing.DrainAsync(ct).ConfigureAwait(false);
        var digest = ContentDigest.FromHash(hashing.GetHash()).ToString();
        if (digest != layer.Digest || hashing.BytesRead != layer.Size)
        {
            TryDeleteFolder(work);
            throw Mismatch(layer.Digest, digest);
        }

        return result;
    }

    /// <summary>GETs a byte range into memory; null when the registry answers with the whole blob instead (no Range support).</summary>
    private async Task<byte[]?> GetRangeAsync(string digest, long start, long length, CancellationToken ct)
    {
        using var response = await _client.GetBlobAsync(_repository, digest, start, start + length - 1, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.PartialContent) return null;
        var bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        if (bytes.Length != length) throw Short(digest, start, length, bytes.Length);
        Interlocked.Add(ref _downloaded, bytes.Length);
        _progress(bytes.Length);
        return bytes;
    }

    private async Task FetchIntoAsync(string digest, long blobOffset, long length, FileStream file, long fileOffset, CancellationToken ct)
    {
        using var response = await _client.GetBlobAsync(_repository, digest, blobOffset, blobOffset + length - 1, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.PartialContent)
        {
            throw new VmToolsException("RegistryRangeUnsupported", FailureKind.InvalidOperation, $"The registry stopped honouring Range requests for {digest}.") { Target = digest };
        }

        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new byte[1 << 20];
        long done = 0;
        while (done < length)
        {
            var n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - done)), ct).ConfigureAwait(false);
            if (n == 0) throw Short(digest, blobOffset, length, done);
            await RandomAccess.WriteAsync(file.SafeFileHandle, buffer.AsMemory(0, n), fileOffset + done, ct).ConfigureAwait(false);
            done += n;
            Interlocked.Add(ref _downloaded, n);
            _progress(n);
        }
    }

    private static VmToolsException Mismatch(string expected, string actual)
        => new("RegistryDigestMismatch", FailureKind.InvalidData,
            $"The blob served for {expected} hashes to {actual}: it was corrupted or tampered with. Nothing was cached.") { Target = expected };

    private static VmToolsException Short(string digest, long start, long wanted, long got)
        => new("RegistryBlobTruncated", FailureKind.ReadError, $"The registry sent {got} of {wanted} bytes at offset {start} of {digest}.") { Target = digest };

    internal static bool IsDiskFull(IOException e) => e.HResult == 28 || (e.HResult & 0xFFFF) == 28 || e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase);

    internal static void TryDeleteFolder(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Which chunks of a ranged download have landed, saved atomically after each chunk.</summary>
    private sealed class Journal
    {
        public string Digest { get; set; } = string.Empty;
        public long Size { get; set; }
        public long ChunkBytes { get; set; }
        public int ChunkCount { get; set; }
        public HashSet<int> Done { get; set; } = new();

        public static Journal Fresh(string digest, long size, long chunk, int count) => new() { Digest = digest, Size = size, ChunkBytes = chunk, ChunkCount = count };

        public static Journal Load(string path, string digest, long size, long chunk, int count)
        {
            try
            {
                if (File.Exists(path))
                {
                    var j = JsonSerializer.Deserialize<Journal>(File.ReadAllBytes(path));
                    if (j is not null && j.Digest == digest && j.Size == size && j.ChunkBytes == chunk && j.ChunkCount == count) return j;
                }
            }
            catch (JsonException)
            {
                // A torn or foreign journal only costs a fresh download.
            }

            return Fresh(digest, size, chunk, count);
        }

        public void Save(string path) => AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(this));
    }

    /// <summary>Lets the tar reader own a stream without closing the hashing stream beneath it.</summary>
    private sealed class NonClosingStream : ReadOnlyStream
    {
        private readonly Stream _inner;

        public NonClosingStream(Stream inner) => _inner = inner;

        public override long Position { get => _inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => _inner.Read(buffer);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _inner.ReadAsync(buffer, offset, count, cancellationToken);
    }
}
