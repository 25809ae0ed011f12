using System.Diagnostics;
using VmTools.Core;
using VmTools.Core.Engine;
using VmTools.Core.Host;
using VmTools.Core.Images;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Engine;

/// <summary>One podman API service for the engine tests of this assembly (its own socket and storage).</summary>
public sealed class PodmanFixture : IDisposable
{
    private PodmanService? _service;

    public PodmanService Service => _service ??= PodmanService.Start();

    public void Dispose() => _service?.Dispose();
}

[CollectionDefinition(Name)]
public sealed class ContainerEngineCollection : ICollectionFixture<PodmanFixture>
{
    public const string Name = "Container engine";
}

/// <summary>New-Qcow2Image's engine paths against a real podman API service, through Docker.DotNet.</summary>
[Collection(ContainerEngineCollection.Name)]
public sealed class EngineQcow2Tests : IDisposable
{
    private readonly PodmanFixture _podman;
    private readonly TempDirectory _dir = new("vmtools-engine");
    private readonly List<string> _log = new();

    public EngineQcow2Tests(PodmanFixture podman) => _podman = podman;

    public void Dispose() => _dir.Dispose();

    private Task<Qcow2Image> Build(Qcow2ImageSource source, string output, string? host = null)
        => BuildUntil(source, output, TestContext.Current.CancellationToken, host);

    private Task<Qcow2Image> BuildUntil(Qcow2ImageSource source, string output, CancellationToken ct, string? host = null)
        => new Qcow2ImageBuilder(ProcessRunner.Instance).BuildAsync(new Qcow2ImageRequest(output, source)
        {
            EngineHost = host ?? _podman.Service.Uri,
            Log = l => { lock (_log) _log.Add(l); },
            Warn = l => { lock (_log) _log.Add("WARNING: " + l); },
        }, null, ct);

    private void AssertNoContainersOrScratchLeft(PodmanService? engine = null)
    {
        Assert.Empty((engine ?? _podman.Service).Api.AllContainers());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Path, ".*vmtools-build*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Containerfile_FromScratchWithCopyAndRun_BuildsABootableDisk()
    {
        var context = _dir.Combine("ctx");
        var containerfile = TinyRootfs.WriteContext(Directory.CreateDirectory(context).FullName,
            runStep: "echo built-by-run > /etc/built; /bin/busybox ls /sys/class/net > /etc/netifs");
        var output = _dir.Combine("disk.qcow2");

        var image = await Build(new Qcow2ImageSource.Containerfile(new EngineBuild(context, containerfile)
        {
            Tags = new[] { "localhost/vmtools-test/tiny:run" },
            NetworkMode = "host",
        }), output);

        Programs.MustRun("qemu-img", "check", "-q", output);
        using var fs = new Ext4Inspector(output, _dir.Path);
        Assert.Equal(0, fs.Check().ExitCode);
        Assert.Equal("built-by-run\n", System.Text.Encoding.ASCII.GetString(fs.ReadFile("/etc/built")));
        // Host networking (no bridge set up per RUN step) reached the engine: the step saw this host's interfaces.
        var hostInterfaces = string.Concat(Directory.GetFileSystemEntries("/sys/class/net").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(n => n + "\n"));
        Assert.Equal(hostInterfaces, System.Text.Encoding.ASCII.GetString(fs.ReadFile("/etc/netifs")));
        Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        Assert.Equal(TinyRootfs.Hostname + "\n", System.Text.Encoding.ASCII.GetString(fs.ReadFile("/etc/hostname")));
        Assert.Equal(TinyRootfs.Kernel(TinyRootfs.NewKernelVersion), File.ReadAllBytes(image.KernelPath!));
        Assert.Equal(TinyRootfs.Initrd(TinyRootfs.NewKernelVersion), File.ReadAllBytes(image.InitrdPath!));
        Assert.Equal(_podman.Service.Api.ImageId("localhost/vmtools-test/tiny:run"), image.ImageId);
        Assert.Contains(_log, l => l.Contains("STEP 3/3: RUN", StringComparison.Ordinal));
        Assert.Contains(_log, l => l.StartsWith("Using Podman Engine", StringComparison.Ordinal));
        AssertNoContainersOrScratchLeft();
    }

    [Fact]
    public async Task Containerfile_OutsideTheContext_IsSentAlong()
    {
        var context = Directory.CreateDirectory(_dir.Combine("ctx")).FullName;
        var inside = TinyRootfs.WriteContext(context, runStep: null);
        var outside = _dir.Combine("Containerfile.base");
        File.Move(inside, outside);

        var image = await Build(new Qcow2ImageSource.Containerfile(new EngineBuild(context, outside)), _dir.Combine("disk.qcow2"));

        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        Assert.False(fs.Exists("/" + BuildContextArchive.OutsideContainerfileName));
    }

    [Fact]
    public async Task ImportedImage_KeepsOwnersDevicesAndLinksThroughTheEngineExport()
    {
        RealComponent.RequireRoot("owners and device nodes are only kept when extracting as root");
        var tar = TinyRootfs.WriteTarball(_dir.Combine("rootfs.tar"));
        var id = _podman.Service.Api.ImportRootfs(tar, "localhost/vmtools-test/imported:1");

        var image = await Build(new Qcow2ImageSource.Image("localhost/vmtools-test/imported:1", AlwaysPull: false), _dir.Combine("disk.qcow2"));

        Assert.Equal(id, image.ImageId);
        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal(0, fs.Check().ExitCode);
        Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        Assert.Equal(fs.Stat("/" + TinyRootfs.SamplePath).Inode, fs.Stat("/usr/share/vmtools/sample-hardlink.bin").Inode);
        Assert.Equal(1000, fs.Stat("/home/user/notes.txt").Uid);
        Assert.Equal(0b100_111_101_101, fs.Stat("/usr/bin/su-test").Mode);
        Assert.Equal("1:3", fs.Stat("/dev/null").Device);
        Assert.Equal(TinyRootfs.NewKernelVersion, image.KernelVersion);
        AssertNoContainersOrScratchLeft();
    }

    [Fact]
    public async Task ImageInARegistry_IsPulledByTheEngine()
    {
        using var registry = RegistryServer.StartPlain();
        // The service reads registries.conf once, so the plain-HTTP test registry needs an engine of its own.
        using var engine = PodmanService.Start(registry.Host);
        var tar = TinyRootfs.WriteTarball(_dir.Combine("rootfs.tar"));
        engine.Api.ImportRootfs(tar, "localhost/vmtools-test/to-push:1");
        var remote = $"{registry.Host}/vmtools-test/pulled:1";
        var push = engine.Podman("push", "--quiet", "--tls-verify=false", "localhost/vmtools-test/to-push:1", "docker://" + remote);
        Assert.True(push.ExitCode == 0, push.Stderr);
        Assert.Null(engine.Api.ImageId(remote));

        var image = await Build(new Qcow2ImageSource.Image(remote, AlwaysPull: false), _dir.Combine("disk.qcow2"), engine.Uri);

        Assert.Equal(engine.Api.ImageId(remote), image.ImageId);
        using var fs = new Ext4Inspector(image.Path, _dir.Path);
        Assert.Equal(TinyRootfs.Sample(), fs.ReadFile("/" + TinyRootfs.SamplePath));
        Assert.Empty(engine.Api.AllContainers());
    }

    [Fact]
    public async Task MissingImage_ThatCannotBePulled_IsContainerImagePullFailed()
    {
        var e = await Assert.ThrowsAsync<VmToolsException>(() =>
            Build(new Qcow2ImageSource.Image("127.0.0.1:9/vmtools-test/nowhere:1", AlwaysPull: false), _dir.Combine("disk.qcow2")));
        Assert.Equal("ContainerImagePullFailed", e.ErrorId);
        Assert.False(File.Exists(_dir.Combine("disk.qcow2")));
        AssertNoContainersOrScratchLeft();
    }

    [Fact]
    public async Task FailingBuildStep_IsQcow2ImageBuildFailed_CarryingTheBuildLog()
    {
        var context = Directory.CreateDirectory(_dir.Combine("ctx")).FullName;
        var containerfile = TinyRootfs.WriteContext(context, runStep: "echo this-is-the-step-output; exit 3");

        var e = await Assert.ThrowsAsync<VmToolsException>(() =>
            Build(new Qcow2ImageSource.Containerfile(new EngineBuild(context, containerfile) { NoCache = true, NetworkMode = "host" }), _dir.Combine("disk.qcow2")));

        Assert.Equal("Qcow2ImageBuildFailed", e.ErrorId);
        Assert.Equal(FailureKind.InvalidOperation, e.Kind);
        Assert.Contains("this-is-the-step-output", e.Message);
        Assert.Contains("exit status 3", e.Message);
        Assert.Contains("STEP 2/3: COPY", e.Message);
        Assert.False(File.Exists(_dir.Combine("disk.qcow2")));
        AssertNoContainersOrScratchLeft();
    }

    [Fact]
    public async Task BadContainerfileSyntax_IsQcow2ImageBuildFailed()
    {
        var context = Directory.CreateDirectory(_dir.Combine("ctx")).FullName;
        var containerfile = Path.Combine(context, "Containerfile");
        File.WriteAllText(containerfile, "FROM scratch\nNOTANINSTRUCTION foo\n");

        var e = await Assert.ThrowsAsync<VmToolsException>(() =>
            Build(new Qcow2ImageSource.Containerfile(new EngineBuild(context, containerfile)), _dir.Combine("disk.qcow2")));

        Assert.Equal("Qcow2ImageBuildFailed", e.ErrorId);
        Assert.Contains("NOTANINSTRUCTION", e.Message, StringComparison.OrdinalIgnoreCase);
        AssertNoContainersOrScratchLeft();
    }

    [Fact]
    public async Task CancelDuringABuild_StopsPromptly_AndLeavesNoScratchOrOutput()
    {
        var context = Directory.CreateDirectory(_dir.Combine("ctx")).FullName;
        var containerfile = TinyRootfs.WriteContext(context, runStep: "sleep 60");
        // An engine of its own: the cancelled build's `sleep 60` goes on inside the engine until the RUN
        // step ends, holding its storage lock; on the shared engine that stalled the next test's requests.
        using var engine = PodmanService.Start();
        using var cts = new CancellationTokenSource();
        var build = BuildUntil(new Qcow2ImageSource.Containerfile(new EngineBuild(context, containerfile) { NoCache = true, NetworkMode = "host" }), _dir.Combine("disk.qcow2"), cts.Token, engine.Uri);
        var deadline = DateTime.UtcNow.AddSeconds(180);
        while (DateTime.UtcNow < deadline && !_log.ToArray().Any(l => l.Contains("STEP 3/3", StringComparison.Ordinal))) await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.Contains(_log.ToArray(), l => l.Contains("STEP 3/3", StringComparison.Ordinal));
        var clock = Stopwatch.StartNew();
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => build);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"cancellation took {clock.Elapsed}");
        Assert.False(File.Exists(_dir.Combine("disk.qcow2")));
        AssertNoContainersOrScratchLeft(engine);
    }

    [Theory]
    [InlineData("unix:///nonexistent/vmtools/engine.sock")]
    [InlineData("tcp://127.0.0.1:9")]
    public async Task NoEngineAnswering_IsContainerEngineUnreachable(string host)
    {
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<VmToolsException>(() =>
            Build(new Qcow2ImageSource.Image("localhost/anything:1", AlwaysPull: false), _dir.Combine("disk.qcow2"), host: host));
        Assert.Equal("ContainerEngineUnreachable", e.ErrorId);
        Assert.Equal(FailureKind.ConnectionFailed, e.Kind);
        Assert.Contains("podman system service", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Path));
    }

    [Theory]
    [InlineData(null, null, "unix:///run/podman/podman.sock|unix:///var/run/docker.sock")]
    [InlineData(null, "unix:///tmp/e.sock", "unix:///tmp/e.sock")]
    [InlineData("/tmp/x.sock", "unix:///tmp/e.sock", "unix:///tmp/x.sock")]
    [InlineData("tcp://10.0.0.1:2375", null, "tcp://10.0.0.1:2375/")]
    public void Endpoint_ExplicitHostThenDockerHostThenWellKnownSockets(string? host, string? dockerHost, string expected)
    {
        var endpoint = EngineEndpoint.Resolve(host, name => name == "DOCKER_HOST" ? dockerHost : null);
        Assert.Contains(endpoint.ToString(), expected.Split('|'));
    }

    [Fact]
    public void Endpoint_WithAnUnknownScheme_IsContainerEngineHostInvalid()
    {
        var e = Assert.Throws<VmToolsException>(() => EngineEndpoint.Resolve("ssh://me@host"));
        Assert.Equal("ContainerEngineHostInvalid", e.ErrorId);
    }
}
