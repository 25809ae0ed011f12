using VmTools.TestSupport;

namespace VmTools.Tests.Images;

/// <summary>
/// The flightctl reference path, with the real tool: `podman build` of Containerfile-qcow2-cache
/// (FROM scratch, ADD disk.qcow2 /qcow2/disk.qcow2, LABEL) and `podman push`, then Get-Qcow2Cache pulls it.
/// </summary>
public sealed class PodmanReferenceImageTests : IClassFixture<PlainRegistryFixture>
{
    private readonly PlainRegistryFixture _registry;

    public PodmanReferenceImageTests(PlainRegistryFixture registry) => _registry = registry;

    [Fact]
    public void Get_ImageBuiltByPodmanFromTheReferenceContainerfile_IsPulledByteIdentical()
    {
        RealComponent.RequireRoot("podman runs rootful here (see ENVIRONMENT.md)");
        RealComponent.RequireProgram("podman", "apt-get install podman runc");
        using var podman = PodmanService.Start(_registry.Server.Host);
        using var s = new CacheSession();
        var context = s.Work.Combine("context");
        Directory.CreateDirectory(Path.Combine(context, "bin", "output", "qcow2"));
        var disk = TestDisks.CreateQcow2(Path.Combine(context, "bin", "output", "qcow2", "disk.qcow2"), 4, seed: 70);
        // Containerfile-qcow2-cache as the reference repository has it.
        File.WriteAllText(Path.Combine(context, "Containerfile-qcow2-cache"), """
            FROM scratch
            ARG QCOW2_FILE=bin/output/qcow2/disk.qcow2
            ARG QCOW2_CREATED_DATE
            ADD ${QCOW2_FILE} /qcow2/disk.qcow2
            LABEL org.flightctl.qcow2.created-date="${QCOW2_CREATED_DATE}" \
                  org.flightctl.qcow2.description="Cached QCOW2 image for E2E tests"
            """);
        var image = $"{_registry.Server.Host}/flightctl-tests/flightctl-device-qcow2:base-qcow2-abc1234";
        Check(podman.Podman("build", "--network", "host", "--build-arg", "QCOW2_CREATED_DATE=2025-09-18 00:00:00 UTC",
            "-f", Path.Combine(context, "Containerfile-qcow2-cache"), "-t", image, context));
        Check(podman.Podman("push", "--tls-verify=false", image));

        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag base-qcow2-abc1234 -Destination bin/output/qcow2/disk.qcow2",
            $"{_registry.Server.Host}/flightctl-tests/flightctl-device-qcow2").Single();
        Assert.Equal("Pulled", entry.Properties["Status"].Value.ToString());
        Assert.True(TestDisks.SameBytes(disk, s.Work.Combine("bin", "output", "qcow2", "disk.qcow2")));
    }

    private static void Check((int ExitCode, string Stdout, string Stderr) r)
    {
        if (r.ExitCode != 0) Assert.Fail($"podman exited {r.ExitCode}: {r.Stderr}{r.Stdout}");
    }
}
