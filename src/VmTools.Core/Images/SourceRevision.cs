using VmTools.Core.Host;

namespace VmTools.Core.Images;

/// <summary>
/// The git commit and tree state an image is built from. "Clean" means nothing staged, modified or
/// untracked (<c>git status --porcelain</c> is empty): the reference scripts' <c>git diff --quiet</c>
/// called staged and untracked changes clean and so could publish <c>-latest</c> from a dirty tree.
/// </summary>
public sealed record SourceRevision(string Commit, string TreeState)
{
    public const string Unknown = "unknown";

    public bool IsClean => TreeState == "clean";

    public static async Task<SourceRevision> ReadAsync(ICommandRunner runner, string directory, CancellationToken ct)
    {
        try
        {
            var head = await runner.RunAsync(new CommandSpec("git", new[] { "-C", directory, "rev-parse", "--short", "HEAD^{commit}" }), ct).ConfigureAwait(false);
            if (!head.Succeeded) return new SourceRevision(Unknown, Unknown);
            var status = await runner.RunAsync(new CommandSpec("git", new[] { "-C", directory, "status", "--porcelain" }), ct).ConfigureAwait(false);
            var state = !status.Succeeded ? Unknown : status.StandardOutput.Trim().Length == 0 ? "clean" : "dirty";
            return new SourceRevision(head.StandardOutput.Trim(), state);
        }
        catch (VmToolsException e) when (e.ErrorId == "HostCommandNotFound")
        {
            return new SourceRevision(Unknown, Unknown);
        }
    }
}
