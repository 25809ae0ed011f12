using System.Management.Automation;
using System.Text;
using VmTools.TestSupport;

namespace VmTools.Tests.Images;

/// <summary>Ctrl+C, a full disk, progress and stored logins: the cache leaves nothing half-done and a rerun succeeds.</summary>
public sealed class CacheInterruptionTests : IClassFixture<PlainRegistryFixture>
{
    private readonly PlainRegistryFixture _registry;

    public CacheInterruptionTests(PlainRegistryFixture registry) => _registry = registry;

    private string Publish(CacheSession s, string name, int megabytes, out string disk)
    {
        disk = TestDisks.CreateQcow2(s.Work.Combine(name + ".qcow2"), megabytes, seed: megabytes + 100);
        var repo = $"{_registry.Server.Host}/interrupt/{name}{Guid.NewGuid():N}"[..^20];
        s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag t", disk, repo);
        return repo;
    }

    [Fact]
    public void CtrlC_MidPull_LeavesNoEntry_AndTheRerunResumes()
    {
        using var publisher = new CacheSession();
        var repo = Publish(publisher, "ctrlc", 320, out var disk);
        using var s = new CacheSession();
        // One connection: 32 MiB chunks land in order, so past 35% at least three are journaled.
        var (stopped, progress) = s.Ps.RunAndStop("Get-Qcow2Cache -Repository $args[0] -Tag t -ThrottleLimit 1", p => p.PercentComplete is >= 35 and < 95, repo);
        Assert.True(stopped, "the pull should have been stopped by Ctrl+C");
        Assert.Contains(progress, p => p.StatusDescription.Contains("/s", StringComparison.Ordinal)); // bytes and rate
        Assert.Empty(Directory.GetFileSystemEntries(s.StoreDirectory));

        var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag t", repo).Single();
        Assert.Equal("Pulled", entry.Properties["Status"].Value.ToString());
        Assert.True((long)entry.Properties["BytesDownloaded"].Value < new FileInfo(disk).Length, "the rerun should resume, not start over");
        Assert.True(TestDisks.SameBytes(disk, (string)entry.Properties["Path"].Value));
        Assert.Empty(Directory.GetFileSystemEntries(s.PartialDirectory));
    }

    [Fact]
    public void DiskFull_FailsWithCacheDiskFull_LeavesNothing_AndSucceedsOnceThereIsRoom()
    {
        RealComponent.RequireRoot("mounts a small tmpfs to fill it");
        using var publisher = new CacheSession();
        var repo = Publish(publisher, "full", 48, out var disk);
        using var mount = new TempDirectory("vmtools-tmpfs");
        Programs.MustRun("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount.Path);
        try
        {
            using var s = new CacheSession(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = mount.Path });
            var error = s.Ps.ExpectError("Get-Qcow2Cache -Repository $args[0] -Tag t", repo);
            Assert.Equal("CacheDiskFull,VmTools.Commands.GetQcow2CacheCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.WriteError, error.CategoryInfo.Category);
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(mount.Path, "cache", "images")));
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(mount.Path, "cache", "partial")));

            Programs.MustRun("mount", "-o", "remount,size=128m", mount.Path);
            var entry = s.Ps.Invoke("Get-Qcow2Cache -Repository $args[0] -Tag t", repo).Single();
            Assert.True(TestDisks.SameBytes(disk, (string)entry.Properties["Path"].Value));
        }
        finally
        {
            Programs.Run("umount", "-l", mount.Path);
        }
    }

    [Fact]
    public void DockerConfigJson_CredentialIsUsedWhenNoAuthJsonExists()
    {
        using var secure = RegistryServer.StartTlsWithAuth();
        using var s0 = new CacheSession();
        var dockerDir = s0.Work.Combine("docker");
        Directory.CreateDirectory(dockerDir);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes(RegistryServer.User + ":" + RegistryServer.Password));
        File.WriteAllText(Path.Combine(dockerDir, "config.json"), "{\"auths\":{\"https://" + secure.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        using var s = new CacheSession(new Dictionary<string, string?>
        {
            ["DOCKER_CONFIG"] = dockerDir, ["VMTOOLS_CERTS_D"] = secure.CertsDirectory, ["HOME"] = s0.Work.Path, ["XDG_RUNTIME_DIR"] = s0.Work.Path,
        });
        var disk = TestDisks.CreateQcow2(s.Work.Combine("d.qcow2"), 1, seed: 60);
        var repo = secure.Host + "/dockercfg/base";
        s.Ps.Invoke("Save-Qcow2Cache -Path $args[0] -Repository $args[1] -Tag d", disk, repo);
        Assert.Equal(true, s.Ps.Invoke("Test-Qcow2Cache -Repository $args[0] -Tag d", repo).Single().BaseObject);
        s.Ps.SetEnv("DOCKER_CONFIG", null);
    }
}
