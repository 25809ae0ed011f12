using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>
/// Start-FlightVm reads the MAC a seed given only by path names; the seed may come from VmTools or from
/// the tools people use instead (cloud-localds runs genisoimage -joliet -rock), with one naming system or both.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class IsoRootFileReaderTests : IDisposable
{
    private const string Mac = "52:54:00:de:ad:01";
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string SeedDirectory()
    {
        var dir = _temp.Combine("seed");
        if (Directory.Exists(dir)) return dir;
        NoCloudSeed.WriteDirectory(CloudInitConfig.Create(new CloudInitInputs { Hostname = "by-path", MacAddress = Mac }), dir);
        // Neighbours with similar names and a subdirectory, so the lookup has to pick the right record.
        File.WriteAllText(Path.Combine(dir, "network-config.bak"), "macaddress: 52:54:00:00:00:99\n");
        Directory.CreateDirectory(Path.Combine(dir, "network"));
        return dir;
    }

    [Theory]
    [InlineData("genisoimage", "-J", "-r")]
    [InlineData("genisoimage", "-r")]
    [InlineData("genisoimage", "-J")]
    [InlineData("xorriso", "-J", "-R")]
    public void ReadsNetworkConfig_FromImagesOtherToolsWrote(string tool, params string[] naming)
    {
        var iso = _temp.Combine(tool + string.Concat(naming) + ".iso");
        var args = new List<string>();
        if (tool == "xorriso") args.AddRange(new[] { "-as", "mkisofs" });
        args.AddRange(new[] { "-quiet", "-o", iso, "-V", "cidata" });
        args.AddRange(naming);
        args.Add(SeedDirectory());
        Programs.MustRun(tool == "xorriso" ? IsoReaders.Xorriso : IsoReaders.GenIsoImage, args.ToArray());

        var bytes = IsoRootFileReader.Read(iso, "network-config");
        Assert.NotNull(bytes);
        Assert.Equal(File.ReadAllBytes(Path.Combine(SeedDirectory(), "network-config")), bytes);
        Assert.Equal(Mac, SeedImage.MacAddressOf(iso));
    }

    [Fact]
    public async Task ReadsNetworkConfig_FromOurOwnImage()
    {
        var iso = SeedImage.Write(CloudInitConfig.Create(new CloudInitInputs { MacAddress = Mac }), _temp.Combine("ours.iso"), new IsoImageOptions(), overwrite: false,
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(Mac, SeedImage.MacAddressOf(iso.Path));
    }

    [Fact]
    public void NotAnImage_OrNoSuchFile_IsNull()
    {
        var junk = _temp.Combine("junk.iso");
        File.WriteAllBytes(junk, new byte[64 * 1024]);
        Assert.Null(IsoRootFileReader.Read(junk, "network-config"));
        Assert.Null(SeedImage.MacAddressOf(_temp.Combine("missing.iso")));
        var tiny = _temp.Combine("tiny.iso");
        File.WriteAllBytes(tiny, new byte[100]);
        Assert.Null(SeedImage.MacAddressOf(tiny));
    }
}
