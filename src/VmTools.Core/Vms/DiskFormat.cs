namespace VmTools.Core.Vms;

/// <summary>qcow2 by its magic ("QFI\xfb"), anything else is raw: enough for qemu's -F and format=.</summary>
public static class DiskFormat
{
    public static string Detect(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.Read(magic) == 4 && magic[0] == (byte)'Q' && magic[1] == (byte)'F' && magic[2] == (byte)'I' && magic[3] == 0xFB ? "qcow2" : "raw";
    }
}
