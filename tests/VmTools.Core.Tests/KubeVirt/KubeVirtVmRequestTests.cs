using VmTools.Core.CloudInit;
using VmTools.Core.KubeVirt;
using VmTools.Core.Vms;

namespace VmTools.Core.Tests.KubeVirt;

/// <summary>How ConvertTo-KubeVirtVirtualMachine fills a request from a piped FlightVm, and refuses two VMs of one name.</summary>
public sealed class KubeVirtVmRequestTests
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private static readonly ContainerDiskImage Cached = ContainerDiskImage.FromReference("registry.example:5000/bases/debian", Digest);

    private static FlightVm Vm(string? seedPath = null) => new()
    {
        Name = "Web_1", Id = "id1", State = VmState.Stopped, ImagePath = "/cache/disk.qcow2", DiskMode = VmDiskMode.Overlay,
        OverlayPath = "/vms/web/overlay.qcow2", Directory = "/vms/web", ConsoleLogPath = "/vms/web/console.log",
        QmpSocketPath = "/vms/web/qmp.sock", Network = VmNetworkMode.User, MacAddress = "52:54:00:00:0a:01",
        MemoryMB = 768, CpuCount = 3, CloudInitPath = seedPath, CreatedAt = DateTimeOffset.UtcNow,
    };

    private static KubeVirtVmRequest Given(ContainerDiskImage? image = null, string? name = null) => new() { Image = image!, Name = name, MemoryMB = 1024, CpuCount = 2 };

    [Fact]
    public void ForFlightVm_NothingGiven_TakesTheVmsImageNameSizingAndMac()
    {
        var request = Given().ForFlightVm(Vm(), () => Cached, memoryGiven: false, cpuGiven: false);

        Assert.Equal(Cached, request.Image);
        Assert.Equal("web-1", request.Name);
        Assert.Equal(768, request.MemoryMB);
        Assert.Equal(3, request.CpuCount);
        Assert.Equal("52:54:00:00:0a:01", request.MacAddress);
        Assert.Null(request.Seed);
    }

    [Fact]
    public void ForFlightVm_WhatTheCallerGave_Wins_AndTheStoreIsNotAsked()
    {
        var other = ContainerDiskImage.FromReference("registry.example:5000/bases/other", Digest);

        var request = Given(other, "chosen").ForFlightVm(Vm(), () => throw new InvalidOperationException("the image was given"), memoryGiven: true, cpuGiven: false);

        Assert.Equal(other, request.Image);
        Assert.Equal("chosen", request.Name);
        Assert.Equal(1024, request.MemoryMB);
        Assert.Equal(3, request.CpuCount);
    }

    [Fact]
    public void ForFlightVm_TakesTheSeedTheVmBootedWith()
    {
        using var temp = new TestSupport.TempDirectory("vmtools-kubevirt-request");
        var seedDir = temp.Combine("seed");
        NoCloudSeed.WriteDirectory(CloudInitConfig.Create(new CloudInitInputs { Hostname = "web", MacAddress = "52:54:00:00:0a:01" }), seedDir);

        var request = Given().ForFlightVm(Vm(seedDir), () => Cached, memoryGiven: false, cpuGiven: false);

        Assert.NotNull(request.Seed);
        Assert.Equal("web", request.Seed.Hostname);
        Assert.Equal("52:54:00:00:0a:01", request.Seed.MacAddress);
    }

    [Fact]
    public void VirtualMachineNames_SecondOfOneNameInOneNamespace_IsKubeVirtNameDuplicate()
    {
        var names = new VirtualMachineNames();
        VirtualMachineManifest Vm(string name, string ns) => KubeVirtManifestBuilder.Build(new KubeVirtVmRequest { Image = Cached, Name = name, Namespace = ns })
            .OfType<VirtualMachineManifest>().Single();

        names.Claim(Vm("a", "default"));
        names.Claim(Vm("a", "other"));
        names.Claim(Vm("b", "default"));
        var e = Assert.Throws<VmToolsException>(() => names.Claim(Vm("a", "default")));

        Assert.Equal("KubeVirtNameDuplicate", e.ErrorId);
        Assert.Equal(FailureKind.InvalidArgument, e.Kind);
        Assert.Equal("a", e.Target);
    }
}
