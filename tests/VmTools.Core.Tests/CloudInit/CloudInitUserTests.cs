using VmTools.Core.CloudInit;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>The account New-CloudInitConfig's -UserName, -SshAuthorizedKey, -PasswordHash and -Password describe.</summary>
public sealed class CloudInitUserTests
{
    [Fact]
    public void FromParameters_NoneGiven_IsNoUser()
    {
        Assert.Null(CloudInitUser.FromParameters(null, null, null, null));
    }

    [Fact]
    public void FromParameters_WithAName_IsThatUser_KeepingThePlainPasswordOutOfSight()
    {
        var user = CloudInitUser.FromParameters("ci", new[] { "ssh-ed25519 AAAA ci" }, null, "Hunter2-Secret");

        Assert.NotNull(user);
        Assert.Equal("ci", user.Name);
        Assert.Equal(new[] { "ssh-ed25519 AAAA ci" }, user.SshAuthorizedKeys);
        Assert.True(user.HasPlainPassword);
        Assert.DoesNotContain("Hunter2", user.ToString());
    }

    [Theory]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(false, false, true)]
    public void FromParameters_KeysOrPasswordWithoutAName_IsCloudInitUserNameMissing(bool keys, bool hash, bool plain)
    {
        var e = Assert.Throws<VmToolsException>(() => CloudInitUser.FromParameters(null, keys ? new[] { "ssh-ed25519 AAAA ci" } : null, hash ? "$6$salt$hash" : null, plain ? "pw" : null));

        Assert.Equal("CloudInitUserNameMissing", e.ErrorId);
        Assert.Equal(FailureKind.InvalidArgument, e.Kind);
        Assert.Equal("-SshAuthorizedKey, -PasswordHash and -Password need -UserName.", e.Message);
    }
}
