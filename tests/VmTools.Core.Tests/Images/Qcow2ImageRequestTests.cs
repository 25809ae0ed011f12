using VmTools.Core.Images;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Images;

/// <summary>How New-Qcow2Image's inputs become a request, and what is refused before any build starts: real files, no engine.</summary>
public sealed class Qcow2ImageRequestTests : IDisposable
{
    private readonly TempDirectory _dir = new("vmtools-qcow2-request");

    public void Dispose() => _dir.Dispose();

    private Qcow2ImageInputs Inputs() => new(_dir.Combine("disk.qcow2")) { EngineHost = "unix:///nowhere/engine.sock" };

    private static VmToolsException Refused(Qcow2ImageInputs inputs) => Assert.Throws<VmToolsException>(() => Qcow2ImageRequest.Create(inputs));

    [Fact]
    public void ContainerfileFolder_UsesItsDockerfile_WhenItHasNoContainerfile_AndIsTheContext()
    {
        var folder = Directory.CreateDirectory(_dir.Combine("ctx")).FullName;
        File.WriteAllText(Path.Combine(folder, "Dockerfile"), "FROM scratch\n");

        var request = Qcow2ImageRequest.Create(Inputs() with { Containerfile = folder, ImageTags = new[] { "localhost/base:1" }, NoCache = true, Network = "host" });

        var build = Assert.IsType<Qcow2ImageSource.Containerfile>(request.Source).Build;
        Assert.Equal(Path.Combine(folder, "Dockerfile"), build.Containerfile);
        Assert.Equal(folder, build.ContextDirectory);
        Assert.Equal(new[] { "localhost/base:1" }, build.Tags);
        Assert.True(build.NoCache);
        Assert.Equal("host", build.NetworkMode);
    }

    [Fact]
    public void ContainerfileFolder_PrefersContainerfileOverDockerfile()
    {
        var folder = Directory.CreateDirectory(_dir.Combine("both")).FullName;
        File.WriteAllText(Path.Combine(folder, "Dockerfile"), "FROM scratch\n");
        File.WriteAllText(Path.Combine(folder, "Containerfile"), "FROM scratch\n");

        var request = Qcow2ImageRequest.Create(Inputs() with { Containerfile = folder });

        Assert.Equal(Path.Combine(folder, "Containerfile"), Assert.IsType<Qcow2ImageSource.Containerfile>(request.Source).Build.Containerfile);
    }

    [Fact]
    public void ContainerfileFolder_WithNeither_IsQcow2ImageInputNotFound_NamingTheContainerfile()
    {
        var folder = Directory.CreateDirectory(_dir.Combine("empty")).FullName;

        var e = Refused(Inputs() with { Containerfile = folder });

        Assert.Equal("Qcow2ImageInputNotFound", e.ErrorId);
        Assert.Equal(FailureKind.NotFound, e.Kind);
        Assert.Equal(Path.Combine(folder, "Containerfile"), e.Target);
    }

    [Fact]
    public void MissingContext_IsQcow2ImageInputNotFound()
    {
        var file = _dir.Combine("Containerfile");
        File.WriteAllText(file, "FROM scratch\n");

        var e = Refused(Inputs() with { Containerfile = file, ContextDirectory = _dir.Combine("nowhere") });

        Assert.Equal("Qcow2ImageInputNotFound", e.ErrorId);
        Assert.Equal(_dir.Combine("nowhere"), e.Target);
    }

    [Fact]
    public void OutputFolder_IsQcow2ImagePathIsDirectory_NamingThePathAsWritten_BeforeTheSourceIsChecked()
    {
        Directory.CreateDirectory(_dir.Combine("disk.qcow2"));

        var e = Refused(Inputs() with { OutputPathAsWritten = "./disk.qcow2", RootfsArchive = _dir.Combine("missing.tar") });

        Assert.Equal("Qcow2ImagePathIsDirectory", e.ErrorId);
        Assert.Equal(FailureKind.InvalidArgument, e.Kind);
        Assert.Equal("./disk.qcow2", e.Target);
    }

    [Fact]
    public void ExistingOutput_IsQcow2ImageExists_UnlessOverwriting()
    {
        var archive = _dir.Combine("rootfs.tar");
        File.WriteAllText(archive, "");
        File.WriteAllText(_dir.Combine("disk.qcow2"), "keep me");

        var e = Refused(Inputs() with { RootfsArchive = archive });
        Assert.Equal("Qcow2ImageExists", e.ErrorId);
        Assert.Equal(FailureKind.ResourceExists, e.Kind);

        Assert.True(Qcow2ImageRequest.Create(Inputs() with { RootfsArchive = archive, Overwrite = true }).Overwrite);
    }

    [Fact]
    public void RootfsArchive_NeedsNoEngine_ButANamedEngineAddressIsStillChecked()
    {
        var archive = _dir.Combine("rootfs.tar");
        File.WriteAllText(archive, "");

        var request = Qcow2ImageRequest.Create(new Qcow2ImageInputs(_dir.Combine("disk.qcow2")) { RootfsArchive = archive, SizeGB = 1.5, Label = "root" });

        Assert.Equal(new Qcow2ImageSource.RootfsArchive(archive), request.Source);
        Assert.Equal(1536L << 20, request.Size);
        Assert.Equal("root", request.Label);
        Assert.Equal("ContainerEngineHostInvalid", Refused(Inputs() with { RootfsArchive = archive, EngineHost = "ssh://me@host" }).ErrorId);
    }

    [Fact]
    public void SizeGB_IsRoundedDownToWholeMebibytes_AndNoneSizesToTheContent()
    {
        var archive = _dir.Combine("rootfs.tar");
        File.WriteAllText(archive, "");

        Assert.Equal(64L << 20, Qcow2ImageRequest.Create(Inputs() with { RootfsArchive = archive, SizeGB = 0.0625 + 1e-7 }).Size);
        Assert.Null(Qcow2ImageRequest.Create(Inputs() with { RootfsArchive = archive }).Size);
    }

    [Fact]
    public void Image_NotAReference_IsContainerImageReferenceInvalid()
    {
        var e = Refused(Inputs() with { Image = "Not A Reference" });

        Assert.Equal("ContainerImageReferenceInvalid", e.ErrorId);
        Assert.Equal("Not A Reference", e.Target);
        Assert.Equal(new Qcow2ImageSource.Image("localhost/base:1", true), Qcow2ImageRequest.Create(Inputs() with { Image = "localhost/base:1", Pull = true }).Source);
    }
}
