using System.Formats.Tar;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using VmTools.Tests.Images;
using VmTools.TestSupport;

namespace VmTools.Tests.Engine;

/// <summary>One podman API service and one plain registry for this assembly's New-Qcow2Image tests.</summary>
public sealed class EngineFixture : IDisposable
{
    private PodmanService? _podman;
    private RegistryServer? _registry;

    public PodmanService Podman => _podman ??= PodmanService.Start();

    public RegistryServer Registry => _registry ??= RegistryServer.StartPlain();

    public void Dispose()
    {
        _podman?.Dispose();
        _registry?.Dispose();
    }
}

/// <summary>New-Qcow2Image in a real PowerShell engine, against a real podman service and registry.</summary>
public sealed class NewQcow2ImageTests : IClassFixture<EngineFixture>
{
    private const string Unreachable = "unix:///nonexistent/vmtools/engine.sock";
    private readonly EngineFixture _engine;

    public NewQcow2ImageTests(EngineFixture engine) => _engine = engine;

    private static object? Prop(PSObject o, string name) => o.Properties[name]?.Value;

    private CacheSession Session(string? dockerHost = null)
        => new(new Dictionary<string, string?> { ["DOCKER_HOST"] = dockerHost ?? _engine.Podman.Uri });

    private void AssertNoContainers() => Assert.Empty(_engine.Podman.Api.AllContainers());

    [Fact]
    public void Containerfile_BuildsACheckedDiskWithKernel_ReportingProgressAndBuildLog()
    {
        using var s = Session();
        TinyRootfs.WriteContext(s.Work.Combine());

        var r = s.Ps.Run("New-Qcow2Image -Path out/disk.qcow2 -Containerfile ./Containerfile -ImageTag localhost/vmtools-test/hosted:1 -Network host -Verbose");

        Assert.False(r.HadErrors, string.Join('\n', r.Errors));
        var image = r.Output.Single();
        Assert.Equal("VmTools.Core.Images.Qcow2Image", image.BaseObject.GetType().FullName);
        var path = (string)Prop(image, "Path")!;
        Assert.Equal(s.Work.Combine("out", "disk.qcow2"), path);
        Programs.MustRun("qemu-img", "check", "-q", path);
        using (var fs = new Ext4Inspector(path, s.Work.Path))
        {
            Assert.Equal("built-by-run\n", System.Text.Encoding.ASCII.GetString(fs.ReadFile("/etc/built")));
            Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        }

        Assert.Equal(TinyRootfs.Kernel(TinyRootfs.NewKernelVersion), File.ReadAllBytes((string)Prop(image, "KernelPath")!));
        Assert.Equal(TinyRootfs.Initrd(TinyRootfs.NewKernelVersion), File.ReadAllBytes((string)Prop(image, "InitrdPath")!));
        Assert.Equal(_engine.Podman.Api.ImageId("localhost/vmtools-test/hosted:1"), Prop(image, "ImageId"));
        Assert.Contains(r.Verbose, v => v.Contains("STEP 2/3: COPY", StringComparison.Ordinal));
        Assert.Contains(r.Progress, p => p.Activity == "New-Qcow2Image" && p.StatusDescription.StartsWith("Exporting filesystem", StringComparison.Ordinal));
        AssertNoContainers();
    }

    [Fact]
    public void GetQcow2CacheBuild_MissBuildsWithNewQcow2ImageAndPublishes_ThenAFreshStatePullsKernelAndInitrd()
    {
        var repo = $"{_engine.Registry.Host}/vmtools-test/e2e-base-{Guid.NewGuid():N}"[..^24];
        byte[] disk;
        using (var builder = Session())
        {
            TinyRootfs.WriteContext(builder.Work.Combine());
            var built = builder.Ps.Invoke(
                "Get-Qcow2Cache -Repository $args[0] -Tag base-1 -Build { New-Qcow2Image bin/output/qcow2/disk.qcow2 -Containerfile ./Containerfile -Network host -RequireKernel }", repo).Single();
            Assert.Equal("Built", Prop(built, "Status")!.ToString());
            Assert.NotNull(Prop(built, "Digest"));
            disk = File.ReadAllBytes(builder.Work.Combine("bin", "output", "qcow2", "disk.qcow2"));
        }

        using var s = Session(Unreachable);
        var pulled = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag base-1 -Build { throw 'must not build' }", repo).Single();

        Assert.Equal("Pulled", Prop(pulled, "Status")!.ToString());
        Assert.Equal(disk, File.ReadAllBytes((string)Prop(pulled, "Path")!));
        var kernel = (string?)Prop(pulled, "KernelPath");
        var initrd = (string?)Prop(pulled, "InitrdPath");
        Assert.NotNull(kernel);
        Assert.NotNull(initrd);
        Assert.Equal(TinyRootfs.Kernel(TinyRootfs.NewKernelVersion), File.ReadAllBytes(kernel));
        Assert.Equal(TinyRootfs.Initrd(TinyRootfs.NewKernelVersion), File.ReadAllBytes(initrd));
        Assert.StartsWith(s.Home.Path, kernel);
        AssertNoContainers();
    }

    [Fact]
    public void Image_AnImportedImageBecomesADisk()
    {
        using var s = Session();
        var tar = TinyRootfs.WriteTarball(s.Work.Combine("rootfs.tar"));
        var id = _engine.Podman.Api.ImportRootfs(tar, "localhost/vmtools-test/hosted-import:1");

        var image = s.Ps.Invoke("New-Qcow2Image disk.qcow2 -Image localhost/vmtools-test/hosted-import:1").Single();

        Assert.Equal(id, Prop(image, "ImageId"));
        Assert.Equal(TinyRootfs.NewKernelVersion, Prop(image, "KernelVersion"));
        using var fs = new Ext4Inspector((string)Prop(image, "Path")!, s.Work.Path);
        Assert.Equal(0, fs.Check().ExitCode);
        AssertNoContainers();
    }

    [Fact]
    public void Rootfs_NeedsNoEngine_AndWarnsWithoutAKernel_OrFailsWithRequireKernel()
    {
        using var s = Session(Unreachable);
        TinyRootfs.WriteTarball(s.Work.Combine("nokernel.tar"), withKernel: false);

        var r = s.Ps.Run("New-Qcow2Image a.qcow2 -RootfsPath nokernel.tar -SizeGB 0.5");
        Assert.False(r.HadErrors, string.Join('\n', r.Errors));
        Assert.Null(Prop(r.Output.Single(), "KernelPath"));
        Assert.Equal(512L << 20, Prop(r.Output.Single(), "VirtualSize"));
        Assert.Contains(r.Warnings, w => w.Contains("no kernel under /boot", StringComparison.Ordinal));

        var error = s.Ps.ExpectError("New-Qcow2Image b.qcow2 -RootfsPath nokernel.tar -RequireKernel");
        Assert.Equal("Qcow2ImageKernelNotFound,VmTools.Commands.NewQcow2ImageCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
        Assert.False(File.Exists(s.Work.Combine("b.qcow2")));
    }

    [Fact]
    public void Rootfs_EntryThroughASymlinkThatReplacedADirectory_IsQcow2ImageRootfsEntryInvalid_AndTouchesNothingOutside()
    {
        using var s = Session(Unreachable);
        using var canary = new CanaryDirectory();
        using (var w = new TarWriter(File.Create(s.Work.Combine("evil.tar")), TarEntryFormat.Pax))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "etc/"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/hostname") { DataStream = new MemoryStream("box\n"u8.ToArray()) });
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "etc") { LinkName = canary.Path });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/pwned") { DataStream = new MemoryStream("id\n"u8.ToArray()), Mode = (UnixFileMode)0b100_111_101_101 });
        }

        var error = s.Ps.ExpectError("New-Qcow2Image disk.qcow2 -RootfsPath evil.tar");

        Assert.Equal("Qcow2ImageRootfsEntryInvalid,VmTools.Commands.NewQcow2ImageCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, error.CategoryInfo.Category);
        Assert.Equal("etc/pwned", error.TargetObject);
        canary.AssertUntouched();
        Assert.Equal(new[] { "evil.tar" }, Directory.GetFileSystemEntries(s.Work.Path).Select(Path.GetFileName).ToArray());
    }

    [Fact]
    public void NoEngineAnswering_IsContainerEngineUnreachable()
    {
        using var s = Session(Unreachable);
        TinyRootfs.WriteContext(s.Work.Combine());

        var error = s.Ps.ExpectError("New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile");

        Assert.Equal("ContainerEngineUnreachable,VmTools.Commands.NewQcow2ImageCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ConnectionError, error.CategoryInfo.Category);
        Assert.Contains("DOCKER_HOST", error.Exception.Message);
        Assert.False(File.Exists(s.Work.Combine("disk.qcow2")));
    }

    [Fact]
    public void FailingBuild_IsQcow2ImageBuildFailed_WithTheBuildLog_AndNothingLeftBehind()
    {
        using var s = Session();
        TinyRootfs.WriteContext(s.Work.Combine(), runStep: "echo step-says-goodbye; exit 7");

        var error = s.Ps.ExpectError("New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile -NoCache -Network host");

        Assert.Equal("Qcow2ImageBuildFailed,VmTools.Commands.NewQcow2ImageCommand", error.FullyQualifiedErrorId);
        Assert.Contains("step-says-goodbye", error.Exception.Message);
        Assert.Contains("exit status 7", error.Exception.Message);
        Assert.Equal(new[] { "Containerfile", "rootfs" }, Directory.GetFileSystemEntries(s.Work.Path).Select(Path.GetFileName).Order().ToArray());
        AssertNoContainers();
    }

    [Fact]
    public void WhatIf_BuildsNothing_AndContactsNoEngine()
    {
        using var s = Session(Unreachable);
        TinyRootfs.WriteContext(s.Work.Combine());

        var r = s.Ps.Run("New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile -WhatIf");

        Assert.False(r.HadErrors, string.Join('\n', r.Errors));
        Assert.Empty(r.Output);
        Assert.False(File.Exists(s.Work.Combine("disk.qcow2")));
    }

    [Theory]
    [InlineData("New-Qcow2Image disk.qcow2 -Containerfile ./missing/Containerfile", "Qcow2ImageInputNotFound", ErrorCategory.ObjectNotFound)]
    [InlineData("New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile -Context ./nowhere", "Qcow2ImageInputNotFound", ErrorCategory.ObjectNotFound)]
    [InlineData("New-Qcow2Image disk.qcow2 -RootfsPath ./missing.tar", "Qcow2ImageInputNotFound", ErrorCategory.ObjectNotFound)]
    [InlineData("New-Qcow2Image existing.qcow2 -Containerfile ./Containerfile", "Qcow2ImageExists", ErrorCategory.ResourceExists)]
    [InlineData("New-Qcow2Image rootfs -Containerfile ./Containerfile", "Qcow2ImagePathIsDirectory", ErrorCategory.InvalidArgument)]
    [InlineData("New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile -EngineHost ssh://me@host", "ContainerEngineHostInvalid", ErrorCategory.InvalidArgument)]
    [InlineData("New-Qcow2Image disk.qcow2 -Image 'Not A Reference'", "ContainerImageReferenceInvalid", ErrorCategory.InvalidArgument)]
    [InlineData("New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile -SizeGB 0", "ParameterArgumentValidationError", ErrorCategory.InvalidData)]
    public void BadInput_FailsWithASpecificErrorId_AndWritesNothing(string script, string errorId, ErrorCategory category)
    {
        using var s = Session(Unreachable);
        TinyRootfs.WriteContext(s.Work.Combine());
        File.WriteAllText(s.Work.Combine("existing.qcow2"), "keep me");

        var error = s.Ps.ExpectError(script);

        Assert.Equal($"{errorId},VmTools.Commands.NewQcow2ImageCommand", error.FullyQualifiedErrorId);
        Assert.Equal(category, error.CategoryInfo.Category);
        Assert.False(File.Exists(s.Work.Combine("disk.qcow2")));
        Assert.Equal("keep me", File.ReadAllText(s.Work.Combine("existing.qcow2")));
    }

    [Fact]
    public void CtrlC_DuringABuild_StopsThePipeline_AndLeavesNoScratchContainerOrDisk()
    {
        using var work = new TempDirectory("vmtools-stop");
        TinyRootfs.WriteContext(work.Path, runStep: "sleep 60");
        using var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
        runspace.Open();
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript("param($m, $h, $w) Import-Module $m; $null = $ExecutionContext.SessionState.Path.SetLocation($w); New-Qcow2Image disk.qcow2 -Containerfile ./Containerfile -NoCache -Network host -EngineHost $h -Verbose")
            .AddArgument(PowerShellHost.ModuleManifest).AddArgument(_engine.Podman.Uri).AddArgument(work.Path);
        var running = ps.BeginInvoke();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !ps.Streams.Verbose.ToArray().Any(v => v.Message.Contains("STEP 3/3", StringComparison.Ordinal))) Thread.Sleep(50);
        Assert.Contains(ps.Streams.Verbose.ToArray(), v => v.Message.Contains("STEP 3/3", StringComparison.Ordinal));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        ps.Stop();

        Assert.Throws<PipelineStoppedException>(() => ps.EndInvoke(running));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"stopping took {clock.Elapsed}");
        Assert.Equal(new[] { "Containerfile", "rootfs" }, Directory.GetFileSystemEntries(work.Path).Select(Path.GetFileName).Order().ToArray());
        AssertNoContainers();
    }
}
