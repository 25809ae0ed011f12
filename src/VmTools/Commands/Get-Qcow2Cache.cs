using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.Images;
using VmTools.Core.Registry;

namespace VmTools.Commands;

/// <summary>
/// Gets the QCOW2 base from the registry cache: tries the commit tag, then latest; a verified local copy with
/// the registry's digest is a hit with no download. On a miss, -Build runs and what it built is published.
/// </summary>
[Cmdlet(VerbsCommon.Get, "Qcow2Cache", SupportsShouldProcess = true)]
[OutputType(typeof(Qcow2CacheEntry))]
public sealed class GetQcow2CacheCommand : Qcow2CacheCmdlet
{
    /// <summary>Only this tag (no commit/latest fallback).</summary>
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(CachedTagCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Tag { get; set; }

    /// <summary>Pin: this manifest digest (sha256:…) instead of tags; also written as -Repository repo@sha256:….</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Digest { get; set; }

    /// <summary>Also place the disk here (e.g. bin/output/qcow2/disk.qcow2).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Destination { get; set; }

    [Parameter]
    public PlacementMode LinkMode { get; set; } = PlacementMode.Auto;

    /// <summary>Runs on a miss (or with -Force); must output the built qcow2's path (or an object with a Path property).</summary>
    [Parameter]
    public ScriptBlock? Build { get; set; }

    /// <summary>Skip the registry lookup and build (requires -Build).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Built images are published unless this is set.</summary>
    [Parameter]
    public SwitchParameter NoPublish { get; set; }

    /// <summary>os/arch of the image to take from a multi-arch index (default: this machine's).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Platform { get; set; }

    /// <summary>Parallel ranged GETs for one blob (default 4).</summary>
    [Parameter]
    [ValidateRange(1, 32)]
    public int ThrottleLimit { get; set; } = 4;

    protected override void EndProcessing()
    {
        if (Force && Build is null) ThrowArgumentError("Qcow2CacheForceNeedsBuild", "-Force skips the registry and builds; it needs -Build.", null);
        var repository = ParseRepository(allowDigest: true);
        var pinned = PinnedDigest(repository);
        repository = repository with { Digest = null };
        var platform = Platform is null ? OciPlatform.Current : Guard(() => OciPlatform.Parse(Platform));
        var tags = Tag is not null ? new[] { Guard(() => ValidTag(Tag)) } : null;
        var revision = RunCore(c => SourceRevision.ReadAsync(ProcessRunner.Instance, CurrentDirectory, c.Cancellation));
        tags ??= new[] { Settings.CommitTag(revision), Settings.LatestTag };
        WriteVerbose($"Looking for {repository.Name} tags {string.Join(", ", tags)} (registry {(Settings.RegistryEnabled ? "enabled" : "disabled by REGISTRY_CACHE")}).");

        using var db = OpenState();
        var fetcher = new Qcow2CacheFetcher(db, Paths);
        FetchRequest Request(CoreContext c, bool pull) => new(repository, tags)
        {
            Platform = platform,
            RegistryEnabled = Settings.RegistryEnabled,
            ClientOptions = ClientOptions(c.Verbose) with { Parallelism = ThrottleLimit },
            PullAllowed = pull,
            ManifestDigest = pinned,
        };

        Qcow2CacheEntry entry;
        if (Force)
        {
            entry = new Qcow2CacheEntry { Reference = repository.Name, Tag = tags[0], Status = CacheStatus.Miss, Source = "Force" };
        }
        else
        {
            // Look first without moving blob bytes, so -WhatIf/-Confirm can be asked about the download itself.
            entry = RunCore(c => fetcher.FetchAsync(Request(c, pull: false), c, c.Cancellation));
            if (entry.Status == CacheStatus.WouldPull)
            {
                WriteVerbose($"{entry.Reference}: layer {entry.LayerDigest} ({CoreContext.Bytes(entry.Size)}) is not in the local store.");
                if (!ShouldProcess(entry.Reference, $"Pull layer {entry.LayerDigest} ({CoreContext.Bytes(entry.Size)}) into the local cache")) return;
                entry = RunCore(c => fetcher.FetchAsync(Request(c, pull: true), c, c.Cancellation));
            }
        }

        if (entry.Status == CacheStatus.Miss && Build is not null)
        {
            entry = BuildAndPublish(db, repository, tags, revision, platform) ?? entry;
        }

        if (Destination is not null && entry.Path is not null && ShouldProcess(Destination, $"Place {entry.Reference}"))
        {
            // Placed under the image's lock: a prune since the fetch returned means fetching again, or Qcow2CacheImageGone.
            var target = ResolvePath(Destination);
            var placing = entry;
            entry = RunCore(c => fetcher.PlaceAsync(Request(c, pull: true), placing, target, LinkMode, c, c.Cancellation));
        }

        WriteObject(entry);
    }

    /// <summary>Runs -Build (after ShouldProcess) and hands what it made to the core, which records, publishes and answers with the store's copy.</summary>
    private Qcow2CacheEntry? BuildAndPublish(Core.State.StateDb db, ImageReference repository, string[] tags, SourceRevision revision, OciPlatform platform)
    {
        if (!ShouldProcess(repository.WithTag(tags[0]).ToString(), "Build the base image and publish it")) return null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var output = Build!.Invoke();
        var last = output.LastOrDefault(o => o is not null);
        var built = last?.BaseObject switch
        {
            string s => s,
            FileSystemInfo f => f.FullName,
            _ => last?.Properties["Path"]?.Value?.ToString(),
        };
        if (string.IsNullOrEmpty(built) || !File.Exists(ResolvePath(built)))
        {
            ThrowTerminatingError(new ErrorRecord(new VmToolsException("Qcow2CacheBuildProducedNothing", FailureKind.InvalidOperation,
                $"The -Build script block must output the path of the qcow2 it built; it output '{built ?? "nothing"}'."), "Qcow2CacheBuildProducedNothing", ErrorCategory.InvalidResult, built));
        }

        var diskPath = ResolvePath(built!);
        var request = new CacheFillRequest(diskPath, repository, tags, revision)
        {
            BootFiles = BootFilesOf(last),
            BuildTime = clock.Elapsed,
            TagsFromRevision = Tag is null,
            Publish = !NoPublish,
            Platform = platform,
            Created = PublishTime.For(diskPath),
            RegistryEnabled = Settings.RegistryEnabled,
        };
        return RunCore(c => new Qcow2CacheFiller(db, Paths).FillAsync(request with { ClientOptions = ClientOptions(c.Verbose) }, c, c.Cancellation));
    }

    /// <summary>The manifest digest to pin, from -Digest or repo@digest; a pin excludes -Tag and -Build (a build has no digest to match).</summary>
    private string? PinnedDigest(ImageReference repository)
    {
        var fromParameter = Digest is null ? null : Guard(() => Core.Registry.ContentDigest.Parse(Digest).ToString());
        if (fromParameter is not null && repository.Digest is not null && fromParameter != repository.Digest)
        {
            ThrowArgumentError("Qcow2CacheDigestConflict", $"-Digest {fromParameter} and -Repository {repository} name different digests.", Digest);
        }

        var pinned = fromParameter ?? repository.Digest;
        if (pinned is not null && (Tag is not null || Build is not null || Force))
        {
            ThrowArgumentError("Qcow2CacheDigestExclusive", "A pinned digest is fetched as is: it cannot be combined with -Tag, -Build or -Force.", pinned);
        }

        return pinned;
    }

    /// <summary>A build result object may carry KernelPath/InitrdPath for direct kernel boot; they travel in the image.</summary>
    private IReadOnlyList<BootFile> BootFilesOf(PSObject? built)
    {
        var list = new List<BootFile>();
        if (built is null) return list;
        foreach (var (property, name) in new[] { ("KernelPath", "vmlinuz"), ("InitrdPath", "initrd.img") })
        {
            if (built.Properties[property]?.Value is string p && p.Length > 0) list.Add(new BootFile(ResolvePath(p), name));
        }

        return list;
    }

}
