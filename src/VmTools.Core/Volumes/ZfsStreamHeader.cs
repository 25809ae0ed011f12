using System.Buffers.Binary;
using System.Text;

namespace VmTools.Core.Volumes;

/// <summary>
/// The BEGIN record that opens every <c>zfs send</c> stream: which snapshot it carries (guid and
/// name) and, for an incremental, the guid of the snapshot it starts from. Reading it before
/// zfs receive runs lets a bad or mismatched stream be refused with nothing touched.
/// Layout (dmu_replay_record): type u32, payloadlen u32, magic u64, versioninfo u64,
/// creation_time u64, objset type u32, flags u32, toguid u64, fromguid u64, toname char[256].
/// </summary>
public sealed record ZfsStreamHeader(ulong ToGuid, ulong FromGuid, string ToName)
{
    public const int Length = 56 + 256;

    private const ulong BackupMagic = 0x2F5BACBAC;

    public bool IsIncremental => FromGuid != 0;

    /// <summary>The snapshot part of <see cref="ToName"/> (after '@').</summary>
    public string SnapshotName => ToName.Contains('@') ? ToName[(ToName.IndexOf('@') + 1)..] : ToName;

    public static ZfsStreamHeader Parse(ReadOnlySpan<byte> header)
    {
        if (header.Length < Length) throw Invalid($"the stream is only {header.Length} bytes long");
        var magic = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        bool little;
        if (magic == BackupMagic) little = true;
        else if (BinaryPrimitives.ReverseEndianness(magic) == BackupMagic) little = false;
        else throw Invalid("it does not start with a zfs send BEGIN record");

        var type = little ? BinaryPrimitives.ReadUInt32LittleEndian(header) : BinaryPrimitives.ReadUInt32BigEndian(header);
        if (type != 0) throw Invalid("its first record is not BEGIN");
        var nameBytes = header.Slice(56, 256);
        var end = nameBytes.IndexOf((byte)0);
        var name = Encoding.UTF8.GetString(end < 0 ? nameBytes : nameBytes[..end]);
        return new ZfsStreamHeader(U64(header, 40, little), U64(header, 48, little), name);
    }

    private static ulong U64(ReadOnlySpan<byte> header, int offset, bool little)
        => little ? BinaryPrimitives.ReadUInt64LittleEndian(header[offset..]) : BinaryPrimitives.ReadUInt64BigEndian(header[offset..]);

    private static VmToolsException Invalid(string why)
        => new("VolumeStreamInvalid", FailureKind.InvalidData, $"Not a zfs send stream: {why}.");
}
