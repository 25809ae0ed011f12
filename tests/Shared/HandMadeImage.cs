using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace VmTools.TestSupport;

/// <summary>
/// Builds OCI image layouts by hand (System.Formats.Tar, gzip) and pushes them with skopeo: the reference
/// format (FROM scratch + ADD disk.qcow2 /qcow2/disk.qcow2, gzip layer), plus deliberately bad images.
/// Independent of VmTools' own writer, so pulls are checked against a second implementation.
/// </summary>
public static class HandMadeImage
{
    public sealed record Entry(string Name, string? SourceFile = null, TarEntryType Type = TarEntryType.RegularFile, string? LinkName = null);

    /// <summary>Pushes an image whose single layer holds <paramref name="entries"/>, and returns the manifest digest.</summary>
    public static string Push(string workDir, string destination, IEnumerable<Entry> entries, bool gzip = true, string? layerMediaType = null)
    {
        var skopeo = RealComponent.RequireProgram("skopeo", "apt-get install skopeo");
        var layout = Path.Combine(workDir, "layout-" + Guid.NewGuid().ToString("N")[..8]);
        var blobs = Path.Combine(layout, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        var tarPath = Path.Combine(workDir, "layer-" + Guid.NewGuid().ToString("N")[..8] + ".tar");
        using (var fs = File.Create(tarPath))
        using (var w = new TarWriter(fs, TarEntryFormat.Pax))
        {
            foreach (var e in entries)
            {
                var entry = new PaxTarEntry(e.Type, e.Name);
                if (e.LinkName is not null) entry.LinkName = e.LinkName;
                if (e.SourceFile is not null) entry.DataStream = File.OpenRead(e.SourceFile);
                w.WriteEntry(entry);
                entry.DataStream?.Dispose();
            }
        }

        var diffId = Sha(tarPath);
        string layerFile = tarPath;
        if (gzip)
        {
            layerFile = tarPath + ".gz";
            using var src = File.OpenRead(tarPath);
            using var dst = File.Create(layerFile);
            using var gz = new GZipStream(dst, CompressionLevel.Fastest);
            src.CopyTo(gz);
        }

        var layerDigest = Sha(layerFile);
        var layerSize = new FileInfo(layerFile).Length;
        File.Move(layerFile, Path.Combine(blobs, layerDigest));
        File.Delete(tarPath);
        var config = Encoding.UTF8.GetBytes($$$"""{"architecture":"amd64","os":"linux","config":{"Labels":{"org.flightctl.qcow2.created-date":"2025-09-18 00:00:00 UTC"}},"rootfs":{"type":"layers","diff_ids":["sha256:{{{diffId}}}"]}}""");
        var configDigest = Convert.ToHexString(SHA256.HashData(config)).ToLowerInvariant();
        File.WriteAllBytes(Path.Combine(blobs, configDigest), config);
        var mediaType = layerMediaType ?? (gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar");
        var manifest = Encoding.UTF8.GetBytes($$"""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{{configDigest}}","size":{{config.Length}}},"layers":[{"mediaType":"{{mediaType}}","digest":"sha256:{{layerDigest}}","size":{{layerSize}}}]}""");
        var manifestDigest = Convert.ToHexString(SHA256.HashData(manifest)).ToLowerInvariant();
        File.WriteAllBytes(Path.Combine(blobs, manifestDigest), manifest);
        File.WriteAllText(Path.Combine(layout, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        File.WriteAllText(Path.Combine(layout, "index.json"), $$$"""{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{{{manifestDigest}}}","size":{{{manifest.Length}}},"annotations":{"org.opencontainers.image.ref.name":"t"}}]}""");
        Programs.MustRun(skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests", $"oci:{layout}:t", "docker://" + destination);
        Directory.Delete(layout, true);
        return "sha256:" + manifestDigest;
    }

    private static string Sha(string file)
    {
        using var s = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(s)).ToLowerInvariant();
    }
}
