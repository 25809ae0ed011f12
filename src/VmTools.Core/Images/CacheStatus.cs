namespace VmTools.Core.Images;

/// <summary>How Get-Qcow2Cache satisfied a request.</summary>
public enum CacheStatus
{
    /// <summary>A verified local copy matched the registry's digest: no blob bytes moved.</summary>
    Hit,

    /// <summary>Downloaded and verified from the registry.</summary>
    Pulled,

    /// <summary>Built by the -Build script block (then published).</summary>
    Built,

    /// <summary>Nothing found, nothing built.</summary>
    Miss,

    /// <summary>
    /// In the registry but not local, and the request allowed no blob bytes (<see cref="FetchRequest.PullAllowed"/>):
    /// the entry names what a pull would fetch. Get-Qcow2Cache asks ShouldProcess on it, then pulls or stops.
    /// </summary>
    WouldPull,
}
