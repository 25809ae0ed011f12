namespace VmTools.Core.Volumes;

/// <summary>
/// A snapshot a receiving volume already has. The sender looks for the newest snapshot it shares
/// with these (same zfs guid) and sends only the delta from it.
/// </summary>
public sealed record VolumeHave(string SnapshotName, ulong Guid, long CreateTxg);
