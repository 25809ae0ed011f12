using System.Diagnostics;
using VmTools.Core.Images;
using VmTools.Core.Registry;
using VmTools.Core.State;
using static VmTools.Bench.BenchHost;

// Side by side in one run, on one qcow2 over loopback: VmTools' cold pull vs curl GET of the blob to a file
// (target >= 0.9x) and vs skopeo copy + tar extraction (target >= 3x faster); warm hit (target <= 50 ms, zero
// bytes); re-push of an unchanged image (zero blob bytes). Usage: dotnet run -c Release --project bench/Registry [MiB]
var mib = args.Length > 0 ? int.Parse(args[0]) : 1024;
var root = Directory.CreateTempSubdirectory("vmtools-bench-").FullName;
Process? registry = null;
try
{
    var port = FreePort();
    var config = Path.Combine(root, "config.yml");
    File.WriteAllText(config, $"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {root}/storage\nhttp:\n  addr: 127.0.0.1:{port}\n");
    registry = Start("docker-registry", "serve", config);
    Thread.Sleep(500);
    var host = $"127.0.0.1:{port}";

    Console.WriteLine($"Creating a {mib} MiB qcow2 of random data...");
    var disk = RandomQcow2(root, mib);
    var repo = ImageReference.Parse($"{host}/bench/base");
    var revision = new SourceRevision("bench", "clean");

    var pubPaths = PathsUnder(Path.Combine(root, "publisher"));
    using var pubDb = StateDb.Open(pubPaths.EnsureCreated().DatabasePath);
    var publisher = new Qcow2CachePublisher(pubDb, pubPaths);
    var request = new PublishRequest(disk, repo, new[] { "t" }, revision) { Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };
    var sw = Stopwatch.StartNew();
    var pushed = await publisher.PublishAsync(request, null, CancellationToken.None);
    var pushTime = sw.Elapsed;
    sw.Restart();
    var repushed = await publisher.PublishAsync(request with { Tags = new[] { "t2" } }, null, CancellationToken.None);
    var repushTime = sw.Elapsed;

    // Cold pull through VmTools, in a fresh state directory.
    DropCaches();
    var pullPaths = PathsUnder(Path.Combine(root, "puller"));
    using var pullDb = StateDb.Open(pullPaths.EnsureCreated().DatabasePath);
    var fetcher = new Qcow2CacheFetcher(pullDb, pullPaths);
    sw.Restart();
    var cold = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "t" }), null, CancellationToken.None);
    var vmtoolsCold = sw.Elapsed;

    sw.Restart();
    var warm = await fetcher.FetchAsync(new FetchRequest(repo, new[] { "t" }), null, CancellationToken.None);
    var warmTime = sw.Elapsed;

    DropCaches();
    var curlOut = Path.Combine(root, "curl.blob");
    sw.Restart();
    Run("curl", "-sf", "-o", curlOut, $"http://{host}/v2/bench/base/blobs/{pushed.LayerDigest}");
    var curlTime = sw.Elapsed;
    File.Delete(curlOut);

    DropCaches();
    var skopeoDir = Path.Combine(root, "skopeo");
    var extractDir = Path.Combine(root, "extract");
    Directory.CreateDirectory(extractDir);
    sw.Restart();
    Run("skopeo", "copy", "--quiet", "--src-tls-verify=false", $"docker://{host}/bench/base:t", "dir:" + skopeoDir);
    Run("tar", "-xf", Path.Combine(skopeoDir, pushed.LayerDigest["sha256:".Length..]), "-C", extractDir, "disk/disk.qcow2");
    var skopeoTime = sw.Elapsed;

    var size = new FileInfo(disk).Length;
    Console.WriteLine();
    Console.WriteLine($"qcow2: {size / (1 << 20)} MiB; layer {pushed.LayerSize / (1 << 20)} MiB; loopback registry (distribution 2.8)");
    Console.WriteLine($"push (first):                 {pushTime.TotalSeconds,7:0.000} s  {pushed.BytesUploaded / (1 << 20)} MiB uploaded");
    Console.WriteLine($"re-push unchanged:            {repushTime.TotalSeconds,7:0.000} s  {repushed.BytesUploaded} blob bytes uploaded, {repushed.BlobsSkipped} blobs skipped");
    Console.WriteLine($"cold pull, VmTools:           {vmtoolsCold.TotalSeconds,7:0.000} s  {cold.BytesDownloaded / (1 << 20)} MiB, verified + header-checked + committed");
    Console.WriteLine($"blob GET to file, curl:       {curlTime.TotalSeconds,7:0.000} s  (no verification, no extraction)");
    Console.WriteLine($"skopeo copy + tar extraction: {skopeoTime.TotalSeconds,7:0.000} s");
    Console.WriteLine($"warm hit, VmTools:            {warmTime.TotalMilliseconds,7:0.0} ms {warm.BytesDownloaded} bytes ({warm.Status})");
    Console.WriteLine();
    Console.WriteLine($"ratio vs curl (curl time / VmTools time, target >= 0.9): {curlTime / vmtoolsCold:0.00}x");
    Console.WriteLine($"ratio vs skopeo+tar (target >= 3):                       {skopeoTime / vmtoolsCold:0.00}x");
}
finally
{
    try { registry?.Kill(true); } catch (InvalidOperationException) { }
    Directory.Delete(root, recursive: true);
}





