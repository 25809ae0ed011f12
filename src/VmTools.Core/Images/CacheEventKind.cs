namespace VmTools.Core.Images;

/// <summary>What happened in one cache operation; stored as lower-case words in the events table.</summary>
public enum CacheEventKind
{
    Hit,
    Pulled,
    Miss,
    Built,
    Pushed,

    /// <summary>An image removed from the local store (bytes: what its removal gave back to the filesystem).</summary>
    Evicted,
}
