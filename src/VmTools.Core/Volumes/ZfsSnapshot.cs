namespace VmTools.Core.Volumes;

/// <summary>One zfs snapshot as <c>zfs get -p</c> reports it: full name, guid (same on every pool a stream reached), creation txg.</summary>
public sealed record ZfsSnapshot(string Name, ulong Guid, long CreateTxg, long UserRefs)
{
    public string ShortName => Name[(Name.IndexOf('@') + 1)..];
}
