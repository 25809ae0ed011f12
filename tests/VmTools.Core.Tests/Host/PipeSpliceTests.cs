using System.Diagnostics;
using System.Security.Cryptography;
using VmTools.Core.Host;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Host;

/// <summary>splice(2) between real processes' pipes, the path zfs send → zfs receive takes.</summary>
public sealed class PipeSpliceTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task PipeToPipe_MovesEveryByte_AndReportsARunningTotal()
    {
        var payload = RandomFile("payload", (24 << 20) + 12345);
        var totals = new List<long>();
        var (moved, sink, error) = await PipeAsync(new[] { "cat", payload }, new[] { "sha256sum" }, n => totals.Add(n), Ct);
        Assert.Null(error);
        Assert.Equal(new FileInfo(payload).Length, moved);
        Assert.StartsWith(Sha256(payload) + " ", sink.StandardOutput);
        Assert.Equal(moved, totals[^1]);
        Assert.Equal(totals.OrderBy(t => t), totals);
    }

    [Fact]
    public async Task PipeToFile_KeepsTheFileStreamsOwnWritesInOrder()
    {
        var payload = RandomFile("payload", (3 << 20) + 7);
        var output = _temp.Combine("out.bin");
        await using (var file = new FileStream(output, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, useAsync: true))
        {
            await file.WriteAsync("HEAD"u8.ToArray(), Ct); // still in the stream's buffer when splice takes the handle
            long moved = 0;
            var r = await ProcessRunner.Instance.RunAsync(new CommandSpec("cat", new[] { payload })
            {
                ReadStdout = async (stdout, ct) =>
                {
                    Assert.True(PipeSplice.CanSplice(stdout, file));
                    moved = await PipeSplice.CopyAsync(stdout, file, _ => { }, ct);
                },
            }, Ct);
            Assert.True(r.Succeeded, r.StandardError);
            Assert.Equal(new FileInfo(payload).Length, moved);
            await file.WriteAsync("TAIL"u8.ToArray(), Ct);
        }

        var expected = "HEAD"u8.ToArray().Concat(File.ReadAllBytes(payload)).Concat("TAIL"u8.ToArray()).ToArray();
        var actual = File.ReadAllBytes(output);
        Assert.True(expected.SequenceEqual(actual), $"the file is not HEAD + payload + TAIL: {actual.Length} bytes, starts {Convert.ToHexString(actual[..8])}, ends {Convert.ToHexString(actual[^8..])}; payload starts {Convert.ToHexString(expected[4..8])}");
    }

    [Fact]
    public async Task ReaderGoneEarly_IsABrokenPipe_NotAHang()
    {
        var payload = RandomFile("payload", 32 << 20);
        var (_, sink, error) = await PipeAsync(new[] { "cat", payload }, new[] { "sh", "-c", "head -c 1000 | wc -c" }, _ => { }, Ct);
        var io = Assert.IsType<IOException>(error);
        Assert.Equal(PipeSplice.BrokenPipe, io.HResult);
        Assert.Equal("1000", sink.StandardOutput.Trim());
    }

    [Fact]
    public async Task Cancellation_StopsACopyWhoseSourceNeverWrites()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();
        var run = PipeAsync(new[] { "sleep", "60" }, new[] { "cat" }, _ => { }, cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"cancellation took {clock.Elapsed}");
    }

    [Fact]
    public void OnlyPipesAndFilesAreSpliced()
    {
        using var memory = new MemoryStream();
        using var file = File.Create(_temp.Combine("f"));
        Assert.False(PipeSplice.CanSplice(memory, file));
        Assert.False(PipeSplice.CanSplice(file, memory));
    }

    /// <summary>Runs source | sink with the splice in between, the way VolumeTransfer wires zfs send and zfs receive.</summary>
    private static async Task<(long Moved, CommandResult Sink, Exception? CopyError)> PipeAsync(string[] source, string[] sink, Action<long> report, CancellationToken ct)
    {
        var sourceStdout = new TaskCompletionSource<Stream>(TaskCreationOptions.RunContinuationsAsynchronously);
        var copied = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Exception? copyError = null;
        var sinkRun = ProcessRunner.Instance.RunAsync(new CommandSpec(sink[0], sink[1..])
        {
            WriteStdin = async (stdin, c) =>
            {
                var from = await sourceStdout.Task.WaitAsync(c);
                Assert.True(PipeSplice.CanSplice(from, stdin));
                try
                {
                    copied.SetResult(await PipeSplice.CopyAsync(from, stdin, report, c));
                }
                catch (Exception e)
                {
                    copyError = e;
                    copied.SetResult(-1);
                    if (e is OperationCanceledException) throw;
                }
            },
        }, ct);
        var sourceRun = ProcessRunner.Instance.RunAsync(new CommandSpec(source[0], source[1..])
        {
            ReadStdout = async (stdout, c) =>
            {
                sourceStdout.SetResult(stdout);
                await copied.Task.WaitAsync(c);
                stdout.Dispose(); // a source with more to write gets EPIPE instead of waiting for a reader forever
            },
        }, ct);
        var results = await Task.WhenAll(sinkRun, sourceRun);
        return (await copied.Task, results[0], copyError);
    }

    private string RandomFile(string name, int size)
    {
        var path = _temp.Combine(name);
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(size));
        return path;
    }

    private static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();
}
