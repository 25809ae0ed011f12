using VmTools.Core.Volumes.Replication;

namespace VmTools.Core.Tests.Volumes;

public sealed class ReplicaDestinationTests
{
    [Fact]
    public void Parse_ReadsUserHostPortAndDataset()
    {
        var d = ReplicaDestination.Parse("ssh://backup@replica.example:2200/tank/vm/data");
        Assert.Equal(("backup", "replica.example", 2200, "tank/vm/data"), (d.User, d.Host, d.Port, d.Dataset));
        Assert.Equal("[replica.example]:2200", d.KnownHostsName);
        Assert.Equal("ssh://backup@replica.example:2200/tank/vm/data", d.ToString());

        var v6 = ReplicaDestination.Parse("ssh://[fd00::2]/tank");
        Assert.Equal(("fd00::2", 22, "tank", "fd00::2"), (v6.Host, v6.Port, v6.Dataset, v6.SshTarget));
    }

    [Theory]
    [InlineData("ssh://-oProxyCommand=touch@host/tank/x")]
    [InlineData("ssh://user@-oProxyCommand=x/tank/x")]
    [InlineData("ssh://user@host/tank/x;rm -rf /")]
    [InlineData("ssh://user@host/tank/x'$(id)'")]
    [InlineData("ssh://user@host/tank/x@snap")]
    [InlineData("ssh://user@host:70000/tank/x")]
    [InlineData("ssh://user@host/mirror/x")]
    [InlineData("ssh://user@host/tank//x")]
    [InlineData("ssh://user@host/tank/../x")]
    [InlineData("user@host:tank/x")]
    public void Parse_RefusesWhatSshOrTheRemoteShellCouldMisread(string text)
    {
        var e = Assert.Throws<VmToolsException>(() => ReplicaDestination.Parse(text));
        Assert.Contains(e.ErrorId, new[] { "VolumeDestinationInvalid", "VolumeDatasetNameInvalid" });
    }

    [Fact]
    public void Parse_RefusesAPassword_WithoutRepeatingIt()
    {
        var e = Assert.Throws<VmToolsException>(() => ReplicaDestination.Parse("ssh://user:hunter2@host/tank/x"));
        Assert.Equal("VolumeDestinationInvalid", e.ErrorId);
        Assert.DoesNotContain("hunter2", e.Message);
        Assert.DoesNotContain("hunter2", e.Target?.ToString() ?? string.Empty);
    }

    [Fact]
    public void SshCommand_ChecksHostKeysByDefault_NeverPrompts_AndEndsOptionsBeforeTheDestination()
    {
        var ssh = new SshTransport(ReplicaDestination.Parse("ssh://u@h:2200/tank/x"), new SshOptions { KnownHostsFile = "/k h/known" });
        var args = ssh.Command("zfs receive -u " + ZfsName.Quote("tank/x")).Arguments.ToList();
        Assert.Contains("StrictHostKeyChecking=yes", args);
        Assert.Contains("BatchMode=yes", args);
        Assert.Contains("UserKnownHostsFile=\"/k h/known\"", args);
        Assert.Equal(new[] { "--", "u@h", "zfs receive -u 'tank/x'" }, args.TakeLast(3));
        Assert.Equal("2200", args[args.IndexOf("-p") + 1]);

        var optOut = new SshTransport(ReplicaDestination.Parse("ssh://u@h/tank/x"), new SshOptions { SkipHostKeyCheck = true }).Command("true").Arguments;
        Assert.Contains("StrictHostKeyChecking=no", optOut);
    }

    [Theory]
    [InlineData("tank")]
    [InlineData("tank/a-b_c.d:e")]
    public void ZfsName_QuotesValidNames(string name) => Assert.Equal("'" + name + "'", ZfsName.Quote(name));
}
