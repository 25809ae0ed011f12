namespace VmTools.Core.Images;

/// <summary>What happened in one cache operation; stored as lower-case words in the events table.</summary>
public enum CacheEventKind
{
    Hit,
    Pulled,
    Miss,
    Built,
    Pushed,
}
