using System.Text;
using System.Text.RegularExpressions;

namespace VmTools.Core.Images;

/// <summary>
/// A shell-style pattern over references and digests (<c>*</c>, <c>?</c>, <c>[abc]</c>), matched whole and
/// case-insensitively like PowerShell's wildcards; kept in the core so every host filters the same way.
/// </summary>
public sealed class ReferencePattern
{
    private readonly Regex _regex;

    public ReferencePattern(string pattern)
    {
        Text = pattern;
        var sb = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*': sb.Append(".*"); break;
                case '?': sb.Append('.'); break;
                case '[' when pattern.IndexOf(']', i + 1) is var end and > 0:
                    sb.Append('[').Append(Regex.Escape(pattern[(i + 1)..end]).Replace("\\-", "-")).Append(']');
                    i = end;
                    break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }

        _regex = new Regex(sb.Append('$').ToString(), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }

    public string Text { get; }

    public bool HasWildcards => Text.IndexOfAny(new[] { '*', '?', '[' }) >= 0;

    public bool IsMatch(string value) => _regex.IsMatch(value);
}
