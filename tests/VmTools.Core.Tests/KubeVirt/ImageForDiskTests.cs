using VmTools.Core.Images;
using VmTools.Core.KubeVirt;
using VmTools.Core.State;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.KubeVirt;

/// <summary>A FlightVm knows only its disk path; the image store says which registry image (by digest) holds that disk.</summary>
public sealed class ImageForDiskTests : IDisposable
{
    private const string Layer = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    private const string ManifestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string ManifestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private readonly TempDirectory _temp = new("vmtools-kubevirt-store");
    private readonly StateDb _db;
    private readonly ImageStore _store;
    private readonly string _disk;

    public ImageForDiskTests()
    {
        var paths = new VmToolsPaths(_temp.Combine("state"), _temp.Combine("cache"), _temp.Combine("run")).EnsureCreated();
        _db = StateDb.Open(paths.DatabasePath);
        _store = new ImageStore(_db, paths);
        var source = _temp.Combine("disk.qcow2");
        File.WriteAllBytes(source, new byte[4096]);
        _disk = _store.Adopt(Layer, source, Array.Empty<BootFile>(), allowCopy: true)!.DiskPath;
    }

    public void Dispose()
    {
        _db.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public void OneReference_IsTheImage_PinnedByItsManifestDigest()
    {
        _store.RecordRef("registry.example", "bases/debian", "base-1", ManifestA, Layer, "Registry");
        _store.RecordRef("registry.example", "bases/debian", "latest", ManifestA, Layer, "Registry");
        Assert.Equal("registry.example/bases/debian@" + ManifestA, KubeVirtManifestBuilder.ImageForDisk(_store, _disk).Image);
    }

    [Fact]
    public void TwoDifferentImagesHoldingTheDisk_AreAmbiguous()
    {
        _store.RecordRef("registry.example", "bases/debian", "base-1", ManifestA, Layer, "Registry");
        _store.RecordRef("mirror.example", "bases/debian", "base-1", ManifestB, Layer, "Registry");
        Assert.Equal("KubeVirtImageAmbiguous", Assert.Throws<VmToolsException>(() => KubeVirtManifestBuilder.ImageForDisk(_store, _disk)).ErrorId);
    }

    [Fact]
    public void ADiskTheCacheDoesNotHold_IsNotCached()
    {
        _store.RecordRef("registry.example", "bases/debian", "base-1", ManifestA, Layer, "Registry");
        var e = Assert.Throws<VmToolsException>(() => KubeVirtManifestBuilder.ImageForDisk(_store, _temp.Combine("disk.qcow2")));
        Assert.Equal("KubeVirtImageNotCached", e.ErrorId);
    }
}
