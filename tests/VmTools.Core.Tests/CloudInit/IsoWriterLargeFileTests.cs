using System.Security.Cryptography;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>A 2 GiB (sparse) payload: past any signed 32-bit size, read back by isoinfo and xorriso.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class IsoWriterLargeFileTests : IDisposable
{
    private const long Size = 2L << 30;
    private readonly TempDirectory _temp = new("vmtools-isobig");

    public void Dispose() => _temp.Dispose();

    /// <summary>Marked ranges at the start, across the 1 GiB boundary, across 2^31 - 1 and at the very end; holes elsewhere.</summary>
    private static readonly (long Offset, int Length)[] Marks = { (0, 4096), ((1L << 30) - 1000, 5000), ((1L << 31) - 70_000, 69_999) };

    private string MakeSparsePayload()
    {
        var path = _temp.Combine("src", "disk-payload.img");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var f = new FileStream(path, FileMode.CreateNew);
        f.SetLength(Size);
        var random = new Random(42);
        foreach (var (offset, length) in Marks)
        {
            var bytes = new byte[length];
            random.NextBytes(bytes);
            f.Position = offset;
            f.Write(bytes);
        }

        return path;
    }

    [Fact]
    public async Task TwoGiBFile_ReadsBackWhole_AndInRanges()
    {
        var xorriso = IsoReaders.Xorriso;
        var payload = MakeSparsePayload();
        File.WriteAllText(_temp.Combine("src", "user-data"), "#cloud-config\n");
        var iso = IsoImageWriter.Write(new IsoContent().AddTree(_temp.Combine("src")), _temp.Combine("big.iso"), new IsoImageOptions(), null, TestContext.Current.CancellationToken);

        Assert.True(iso.Size > Size);
        // Holes stay holes: the image takes little more disk than the marked data.
        var allocated = long.Parse(Programs.MustRun("stat", "-c", "%b", iso.Path).Trim()) * 512;
        Assert.True(allocated < 64L << 20, $"the image allocated {allocated} bytes");

        Assert.Matches($@"-rw-r--r-- +1 +0 +0 +{Size} .* disk-payload\.img", Programs.MustRun(IsoReaders.IsoInfo, "-i", iso.Path, "-R", "-l"));
        // isoinfo -x stops at 2 GiB (a signed size; genisoimage's own images read back empty too), so xorriso reads the whole file.
        var whole = _temp.Combine("whole.img");
        Programs.MustRun(xorriso, "-osirrox", "on", "-indev", iso.Path, "-extract", "/disk-payload.img", whole);
        Assert.Equal(IsoReaders.HashFile(payload), IsoReaders.HashFile(whole));
        File.Delete(whole);

        using var source = File.OpenRead(payload);
        var ranges = Marks.Append((Size - 3000, 3000)).Append(((1L << 31) - 1, 1)).ToArray();
        foreach (var (offset, length) in ranges)
        {
            var cut = _temp.Combine($"cut-{offset}");
            Programs.MustRun(xorriso, "-osirrox", "on", "-indev", iso.Path, "-extract_cut", "/disk-payload.img", offset.ToString(), length.ToString(), cut);
            var expected = new byte[length];
            source.Position = offset;
            source.ReadExactly(expected);
            Assert.Equal(SHA256.HashData(expected), SHA256.HashData(File.ReadAllBytes(cut)));
        }
    }
}
