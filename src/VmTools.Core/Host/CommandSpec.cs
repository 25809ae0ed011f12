namespace VmTools.Core.Host;

/// <summary>One program invocation: file name, argv, optional working directory, environment and stdin.</summary>
public sealed record CommandSpec(string FileName, IReadOnlyList<string> Arguments)
{
    public string? WorkingDirectory { get; init; }

    public IReadOnlyDictionary<string, string?>? Environment { get; init; }

    /// <summary>Fed to the program's stdin and then closed; null closes stdin at once.</summary>
    public Func<Stream, CancellationToken, Task>? WriteStdin { get; init; }

    /// <summary>Consumes stdout as a stream (for large outputs such as a zfs send); when null stdout is captured as text.</summary>
    public Func<Stream, CancellationToken, Task>? ReadStdout { get; init; }

    public static CommandSpec Of(string fileName, params string[] arguments) => new(fileName, arguments);

    public override string ToString() => Arguments.Count == 0 ? FileName : FileName + " " + string.Join(' ', Arguments.Select(Quote));

    private static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=@,+%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}
