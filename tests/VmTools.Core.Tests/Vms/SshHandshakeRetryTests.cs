using VmTools.Core.Host;
using VmTools.Core.Vms;

namespace VmTools.Core.Tests.Vms;

/// <summary>Which ssh/scp failures are tried again: only OpenSSH's own words for a connection that never got past the banners.</summary>
public sealed class SshHandshakeRetryTests
{
    [Theory]
    [InlineData(255, "kex_exchange_identification: read: Connection reset by peer\r\n", true)]
    [InlineData(255, "kex_exchange_identification: Connection closed by remote host\n", true)]
    [InlineData(255, "ssh: connect to host 10.0.0.5 port 22: Connection refused\n", true)]
    [InlineData(255, "ssh: connect to host 127.0.0.1 port 2222: Connection reset by peer\nscp: Connection closed\n", true)]
    [InlineData(255, "", false)] // a remote "exit 255" that printed nothing: it must not run again
    [InlineData(255, "root@127.0.0.1: Permission denied (publickey).\n", false)]
    [InlineData(255, "ssh: connect to host 10.0.0.5 port 22: Connection timed out\n", false)] // it already took ConnectTimeout
    [InlineData(255, "the guest said: kex_exchange_identification: read: Connection reset by peer\n", false)]
    [InlineData(1, "kex_exchange_identification: read: Connection reset by peer\n", false)] // a remote command's own exit code
    [InlineData(0, "", false)]
    public void FailedBeforeSession_ReadsOnlyOpenSshsOwnHandshakeFailures(int exitCode, string stderr, bool expected)
        => Assert.Equal(expected, SshHandshakeRetry.FailedBeforeSession(new CommandResult(new CommandSpec("ssh", []), exitCode, "", stderr)));
}
