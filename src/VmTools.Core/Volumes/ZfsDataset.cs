namespace VmTools.Core.Volumes;

/// <summary>A dataset found in a pool when the store opens: its type and, for filesystems, whether it is mounted.</summary>
public sealed record ZfsDataset(string Name, string Type, bool Mounted);
