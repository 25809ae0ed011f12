using VmTools.Core.CloudInit;
using Xunit;

namespace VmTools.Core.Tests.CloudInit;

public sealed class YamlTextTests
{
    /// <summary>The plain-ASCII shortcut must write exactly what the JSON encoder writes, character by character.</summary>
    [Fact]
    public void Quote_EveryAsciiCharacter_MatchesTheJsonEncoder()
    {
        for (var c = 0; c < 128; c++)
        {
            var value = "a" + (char)c + "b";
            Assert.Equal(YamlText.QuoteWithEncoder(value), YamlText.Quote(value));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("vm-01.example")]
    [InlineData("ssh-ed25519 AAAAC3Nza/+= user@host")]
    [InlineData("VMTOOLS-CLOUD-INIT: done, instance i-1 after $UPTIME seconds")]
    [InlineData("<&'`>")]
    [InlineData("tab\there")]
    [InlineData("quote \" and \\ backslash")]
    [InlineData("é ü 日本 \u2028 \U0001F600")]
    public void Quote_MatchesTheJsonEncoder(string value) => Assert.Equal(YamlText.QuoteWithEncoder(value), YamlText.Quote(value));

    [Fact]
    public void Quote_PlainAscii_IsDoubleQuotedAsItIs() => Assert.Equal("\"a: b # c\"", YamlText.Quote("a: b # c"));
}
