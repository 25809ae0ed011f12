using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.Images;

namespace VmTools.Commands;

/// <summary>
/// Answers $true when the cache has the base (commit tag or latest, or -Tag), for CI `if` steps. A registry
/// that cannot be asked is reported as a warning and answers $false, so a pipeline falls back to building.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "Qcow2Cache")]
[OutputType(typeof(bool))]
public sealed class TestQcow2CacheCommand : Qcow2CacheCmdlet
{
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(CachedTagCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Tag { get; set; }

    protected override void EndProcessing()
    {
        var repository = ParseRepository();
        var tags = Tag is not null ? new[] { Guard(() => ValidTag(Tag)) } : null;
        if (tags is null)
        {
            var revision = RunCore(c => SourceRevision.ReadAsync(ProcessRunner.Instance, CurrentDirectory, c.Cancellation));
            tags = new[] { Settings.CommitTag(revision), Settings.LatestTag };
        }

        using var db = OpenState();
        var fetcher = new Qcow2CacheFetcher(db, Paths);
        try
        {
            WriteObject(Await(c => fetcher.ExistsAsync(new FetchRequest(repository, tags) { RegistryEnabled = Settings.RegistryEnabled, ClientOptions = ClientOptions(c.Verbose) }, c.Cancellation)));
        }
        catch (VmToolsException v) when (v.Kind is FailureKind.ConnectionFailed or FailureKind.AuthenticationFailed or FailureKind.PermissionDenied or FailureKind.SecurityError)
        {
            WriteWarning($"{v.ErrorId}: {v.Message}");
            WriteObject(false);
        }
    }
}
