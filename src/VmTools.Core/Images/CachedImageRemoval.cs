namespace VmTools.Core.Images;

/// <summary>What Remove-Qcow2CacheImage -PassThru reports for one image it removed from the local store.</summary>
public sealed record CachedImageRemoval(string LayerDigest, IReadOnlyList<string> References, long BytesFreed, IReadOnlyList<string> UsedBy)
{
    /// <summary>True when VM records still used the image and -Force removed it anyway.</summary>
    public bool Forced => UsedBy.Count > 0;
}
