using VmTools.Core.Registry;

namespace VmTools.Core.Tests.Images;

public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("quay.io/flightctl-tests/flightctl-device-qcow2:base-qcow2-latest", "quay.io", "flightctl-tests/flightctl-device-qcow2", "base-qcow2-latest")]
    [InlineData("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", null)]
    [InlineData("localhost/x:1", "localhost", "x", "1")]
    [InlineData("busybox", "docker.io", "library/busybox", null)]
    [InlineData("org/img:v1", "docker.io", "org/img", "v1")]
    public void Parse_Normalises(string text, string registry, string repository, string? tag)
    {
        var r = ImageReference.Parse(text);
        Assert.Equal((registry, repository, tag), (r.Registry, r.Repository, r.Tag));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Quay.io/UPPER/x")]
    [InlineData("a/b:-bad")]
    [InlineData("a/b@sha256:1234")]
    [InlineData("a//b")]
    public void Parse_Invalid_FailsWithImageReferenceInvalid(string text)
        => Assert.Equal("ImageReferenceInvalid", Assert.Throws<VmToolsException>(() => ImageReference.Parse(text)).ErrorId);

    [Theory]
    [InlineData("https://ci:hunter2-pw@quay.io/org/img")]
    [InlineData("ci:hunter2-pw@quay.io/org/img")]
    [InlineData("ci:hunter2@pw@quay.io/org/img")]
    public void Parse_AddressWithUserInfo_IsRefused_AndTheSecretIsInNeitherMessageNorTarget(string text)
    {
        var e = Assert.Throws<VmToolsException>(() => ImageReference.Parse(text));
        Assert.Equal("ImageReferenceInvalid", e.ErrorId);
        Assert.DoesNotContain("hunter2", e.Message);
        Assert.DoesNotContain("hunter2", (string)e.Target!);
        Assert.Contains("***@quay.io/org/img", e.Message);
    }

    [Theory]
    [InlineData("https://u:p@h:5000/x", "https://***@h:5000/x")]
    [InlineData("u@h/x", "***@h/x")]
    [InlineData("quay.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", null)]
    [InlineData("alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", null)]
    [InlineData("host:5000/a/b", null)]
    public void UserInfo_IsMasked_DigestsAreNot(string text, string? shown)
        => Assert.Equal(shown ?? text, UserInfo.Redact(text));

    [Fact]
    public void Loopback_IsRecognised()
    {
        Assert.True(ImageReference.Parse("127.0.0.1:5000/a").IsLoopback);
        Assert.True(ImageReference.Parse("localhost:5000/a").IsLoopback);
        Assert.False(ImageReference.Parse("quay.io/a/b").IsLoopback);
    }
}
