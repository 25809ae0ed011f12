using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.Core.Vms;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>Which MAC Start-FlightVm gives the NIC: the one asked for, else the seed's own; never two that disagree.</summary>
public sealed class NicMacChoiceTests : IDisposable
{
    private const string SeedMac = "52:54:00:de:ad:02";
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string? _seedIso;

    private string SeedIso()
        => _seedIso ??= SeedImage.Write(CloudInitConfig.Create(new CloudInitInputs { MacAddress = SeedMac }), _temp.Combine("seed.iso"), new IsoImageOptions(), overwrite: false,
            cancellationToken: TestContext.Current.CancellationToken).Path;

    [Fact]
    public void NothingRequested_NoSeed_LeavesTheMacToBeAllocated()
    {
        Assert.Equal(new NicMacChoice(null, FromSeed: false), NicMacChoice.For(null, null, null));
    }

    [Fact]
    public void NothingRequested_TakesTheSeedObjectsMac_WithoutReadingTheImage()
    {
        // The path names no file: the MAC the seed object carries is enough.
        Assert.Equal(new NicMacChoice("52:54:00:00:00:07", FromSeed: true), NicMacChoice.For(null, "52:54:00:00:00:07", _temp.Combine("absent.iso")));
    }

    [Fact]
    public void NothingRequested_SeedGivenByPath_ReadsTheMacFromTheImage()
    {
        Assert.Equal(new NicMacChoice(SeedMac, FromSeed: true), NicMacChoice.For(null, null, SeedIso()));
        Assert.Equal(new NicMacChoice(SeedMac, FromSeed: true), NicMacChoice.For(null, "", SeedIso()));
    }

    [Fact]
    public void Requested_SameMacAsTheSeedInAnotherSpelling_IsKeptAsRequested()
    {
        Assert.Equal(new NicMacChoice("52-54-00-DE-AD-02", FromSeed: false), NicMacChoice.For("52-54-00-DE-AD-02", null, SeedIso()));
    }

    [Fact]
    public void Requested_SeedWithoutReadableMac_IsTaken()
    {
        var notAnImage = _temp.Combine("junk.iso");
        File.WriteAllBytes(notAnImage, new byte[64 * 1024]);
        Assert.Equal(new NicMacChoice("52:54:00:00:00:03", FromSeed: false), NicMacChoice.For("52:54:00:00:00:03", null, notAnImage));
    }

    [Theory]
    [InlineData("52:54:00:00:00:01", SeedMac, false)]
    [InlineData("52:54:00:00:00:01", null, true)]
    public void Requested_DifferingFromTheSeeds_IsVmMacAddressMismatch(string requested, string? seedMac, bool readTheImage)
    {
        var e = Assert.Throws<VmToolsException>(() => NicMacChoice.For(requested, seedMac, readTheImage ? SeedIso() : null));
        Assert.Equal("VmMacAddressMismatch", e.ErrorId);
        Assert.Equal(FailureKind.InvalidArgument, e.Kind);
        Assert.Equal(requested, e.Target);
        Assert.Equal($"-MacAddress {requested} differs from the seed's {SeedMac}; the seed's network-config would not find the NIC.", e.Message);
    }

    [Fact]
    public void Requested_NotAMac_IsNotCompared_SoValidationCanNameIt()
    {
        Assert.Equal(new NicMacChoice("01:00:5e:00:00:01", FromSeed: false), NicMacChoice.For("01:00:5e:00:00:01", SeedMac, null));
    }
}
