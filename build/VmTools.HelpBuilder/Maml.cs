using System.Xml.Linq;

namespace VmTools.HelpBuilder;

/// <summary>The MAML namespaces PowerShell's help system reads.</summary>
public static class Maml
{
    public static readonly XNamespace Msh = "http://msh";
    public static readonly XNamespace Doc = "http://schemas.microsoft.com/maml/2004/10";
    public static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    public static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

    public static XAttribute[] Declarations =>
    [
        new(XNamespace.Xmlns + "maml", Doc),
        new(XNamespace.Xmlns + "command", Command),
        new(XNamespace.Xmlns + "dev", Dev),
    ];

    /// <summary>A description made of one paragraph.</summary>
    public static XElement Description(string text) =>
        new(Doc + "description", new XElement(Doc + "para", text));

    /// <summary>True when a description holds no words: help would show nothing.</summary>
    public static bool IsBlank(XElement? description) =>
        description is null || string.IsNullOrWhiteSpace(description.Value);
}
