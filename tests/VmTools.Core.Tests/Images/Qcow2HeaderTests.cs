using System.Buffers.Binary;
using System.Text;
using VmTools.Core.Images;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Images;

/// <summary>
/// A cached base must not make qemu open anything but itself. Headers are made by qemu-img where it can
/// make them and crafted byte by byte otherwise (qcow2.txt: magic, version, backing file offset/size at
/// 8/16, incompatible features at 72, header_length at 100, extensions after the header).
/// </summary>
public sealed class Qcow2HeaderTests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-qcow2hdr");

    public void Dispose() => _dir.Dispose();

    /// <summary>A version 3 header of a 1 MiB image with 64 KiB clusters, then the extensions given, then the end marker.</summary>
    private string Crafted(ulong incompatible = 0, uint version = 3, (uint Type, byte[] Data)[]? extensions = null, string? backingFile = null, byte[]? wholeFile = null)
    {
        var path = _dir.Combine($"crafted-{Guid.NewGuid():N}.qcow2");
        if (wholeFile is not null)
        {
            File.WriteAllBytes(path, wholeFile);
            return path;
        }

        var file = new byte[3 * 65536];
        var h = file.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(h, 0x514649fb);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], version);
        BinaryPrimitives.WriteUInt32BigEndian(h[20..], 16);
        BinaryPrimitives.WriteUInt64BigEndian(h[24..], 1 << 20);
        BinaryPrimitives.WriteUInt64BigEndian(h[72..], incompatible);
        BinaryPrimitives.WriteUInt32BigEndian(h[96..], 4);
        BinaryPrimitives.WriteUInt32BigEndian(h[100..], 104);
        var at = 104;
        foreach (var (type, data) in extensions ?? Array.Empty<(uint, byte[])>())
        {
            BinaryPrimitives.WriteUInt32BigEndian(h[at..], type);
            BinaryPrimitives.WriteUInt32BigEndian(h[(at + 4)..], (uint)data.Length);
            data.CopyTo(h[(at + 8)..]);
            at += 8 + ((data.Length + 7) & ~7);
        }

        at += 8; // end-of-extensions marker: type 0, length 0
        if (backingFile is not null)
        {
            var name = Encoding.UTF8.GetBytes(backingFile);
            BinaryPrimitives.WriteUInt64BigEndian(h[8..], (ulong)at);
            BinaryPrimitives.WriteUInt32BigEndian(h[16..], (uint)name.Length);
            name.CopyTo(h[at..]);
        }

        File.WriteAllBytes(path, file);
        return path;
    }

    private static VmToolsException Refused(string path)
    {
        var e = Assert.Throws<VmToolsException>(() => Qcow2Header.RequireSelfContained(path, "the-image"));
        Assert.Equal("Qcow2ImageUnsafe", e.ErrorId);
        Assert.Equal(FailureKind.SecurityError, e.Kind);
        Assert.Equal("the-image", e.Target);
        return e;
    }

    [Fact]
    public void QemuImgQcow2_V3AndV2_AreSelfContained()
    {
        var qemuImg = RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        var v3 = TestDisks.CreateQcow2(_dir.Combine("v3.qcow2"), 1);
        var v2 = _dir.Combine("v2.qcow2");
        Programs.MustRun(qemuImg, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2, "1M");

        Assert.Equal(3, Qcow2Header.RequireSelfContained(v3).Version);
        Assert.Equal(2, Qcow2Header.RequireSelfContained(v2).Version);
    }

    [Fact]
    public void CraftedCleanHeader_WithTheKnownHarmlessBits_IsSelfContained()
    {
        // dirty (0), compression type (3) and extended L2 (4) change nothing outside the file.
        var header = Qcow2Header.RequireSelfContained(Crafted(incompatible: 0b11001));
        Assert.Equal(0b11001UL, header.IncompatibleFeatures);
        Assert.Null(header.ExternalDataFile);
        Assert.Null(header.BackingFile);
    }

    [Fact]
    public void QemuImgBackingFile_IsRefusedNamingIt()
    {
        var basePath = TestDisks.CreateQcow2(_dir.Combine("base.qcow2"), 1);
        var overlay = TestDisks.CreateQcow2(_dir.Combine("overlay.qcow2"), 0, backingFile: basePath);
        var e = Refused(overlay);
        Assert.Contains("backing file", e.Message);
        Assert.Contains(basePath, e.Message);
    }

    [Fact]
    public void CraftedBackingFile_IsRefusedNamingIt()
    {
        var e = Refused(Crafted(backingFile: "/etc/shadow"));
        Assert.Contains("backing file ('/etc/shadow')", e.Message);
    }

    [Fact]
    public void QemuImgExternalDataFile_IsRefusedNamingIt()
    {
        var qemuImg = RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        var image = _dir.Combine("datafile.qcow2");
        var data = _dir.Combine("host-disk.raw");
        Programs.MustRun(qemuImg, "create", "-q", "-f", "qcow2", "-o", "data_file=" + data, image, "1M");

        var e = Refused(image);
        Assert.Contains("external data file", e.Message);
        Assert.Contains(data, e.Message);
    }

    [Fact]
    public void CraftedExternalDataFileBit_WithoutAName_IsRefused()
    {
        var e = Refused(Crafted(incompatible: 1UL << 2));
        Assert.Contains("external data file", e.Message);
        Assert.Contains("bit 2", e.Message);
    }

    [Fact]
    public void CraftedExternalDataFileExtension_WithoutTheBit_IsRefused()
    {
        var e = Refused(Crafted(extensions: new[] { (0x44415441u, Encoding.UTF8.GetBytes("/dev/sda")) }));
        Assert.Contains("'/dev/sda'", e.Message);
    }

    [Fact]
    public void DataFileExtension_AfterAnotherExtension_IsFound()
    {
        var e = Refused(Crafted(extensions: new[] { (0x6803f857u, new byte[48]), (0x44415441u, Encoding.UTF8.GetBytes("/var/lib/x.raw")) }));
        Assert.Contains("'/var/lib/x.raw'", e.Message);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(17)]
    [InlineData(63)]
    public void UnknownIncompatibleBit_IsRefusedNamingTheBit(int bit)
    {
        var e = Refused(Crafted(incompatible: 1UL << bit));
        Assert.Contains($"incompatible feature bit(s) {bit},", e.Message);
    }

    [Fact]
    public void CorruptBit_IsRefused()
    {
        Assert.Contains("corrupt", Refused(Crafted(incompatible: 1UL << 1)).Message);
    }

    [Fact]
    public void RawDiskUnderAQcow2Name_IsRefused()
    {
        // An MBR-looking raw disk, and a raw disk whose first sector a guest could have written.
        var mbr = new byte[1 << 20];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        Assert.Contains("not a qcow2", Refused(Crafted(wholeFile: mbr)).Message);
        Assert.Contains("not a qcow2", Refused(Crafted(wholeFile: Array.Empty<byte>())).Message);
        Assert.Contains("not a qcow2", Refused(Crafted(wholeFile: "QFI"u8.ToArray())).Message);
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(4u)]
    public void UnknownVersion_IsRefused(uint version)
    {
        Assert.Contains($"version {version}", Refused(Crafted(version: version)).Message);
    }

    [Fact]
    public void ExtensionRunningPastTheFirstCluster_IsRefused()
    {
        var path = Crafted();
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(104), 0x12345678);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(108), 1 << 20);
        File.WriteAllBytes(path, bytes);
        Assert.Contains("header extension", Refused(path).Message);
    }
}
