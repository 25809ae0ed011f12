using System.Text.Json.Serialization;

namespace VmTools.Core.Vms;

/// <summary>
/// What is CURRENTLY TRUE about a running VM: kernel objects and a process that vanish with a reboot or
/// a kill. Never stored in SQLite; kept in memory and in <c>&lt;vmdir&gt;/handles.json</c> so another
/// process can find them and teardown knows what to release even when qemu is gone.
/// </summary>
public sealed record VmHandles
{
    [JsonPropertyName("pid")]
    public int Pid { get; init; }

    /// <summary>Field 22 of /proc/&lt;pid&gt;/stat (clock ticks after boot): tells a recycled PID from ours.</summary>
    [JsonPropertyName("process_start_time")]
    public ulong ProcessStartTime { get; init; }

    [JsonPropertyName("boot_id")]
    public string? BootId { get; init; }

    [JsonPropertyName("qmp_socket")]
    public string? QmpSocket { get; init; }

    [JsonPropertyName("tap_device")]
    public string? TapDevice { get; init; }

    [JsonPropertyName("base_loop")]
    public string? BaseLoop { get; init; }

    [JsonPropertyName("cow_loop")]
    public string? CowLoop { get; init; }

    [JsonPropertyName("dm_name")]
    public string? DmName { get; init; }

    [JsonPropertyName("dm_dev")]
    public string? DmDevice { get; init; }

    /// <summary>True when nothing in the kernel needs releasing.</summary>
    [JsonIgnore]
    public bool IsEmpty => Pid == 0 && TapDevice is null && BaseLoop is null && CowLoop is null && DmName is null;
}
