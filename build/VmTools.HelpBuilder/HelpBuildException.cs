namespace VmTools.HelpBuilder;

/// <summary>A defect in the help sources, reported in MSBuild's canonical form so the build names the file.</summary>
public sealed class HelpBuildException(string file, string message) : Exception(message)
{
    public string File { get; } = file;

    public string ToMsBuildError() => $"{File}: error VMHELP: {Message}";
}
