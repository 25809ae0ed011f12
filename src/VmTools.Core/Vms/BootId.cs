namespace VmTools.Core.Vms;

/// <summary>The kernel's per-boot UUID: handles recorded under another boot describe nothing that exists now.</summary>
public static class BootId
{
    private static readonly Lazy<string> Value = new(() => File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim());

    public static string Current => Value.Value;
}
