namespace VmTools.Core.Vms;

public sealed record LoopDevice(string Device, string BackingFile);

/// <summary>Attached loop devices read from sysfs (no losetup spawn): device and backing file.</summary>
public static class LoopDevices
{
    public static IReadOnlyList<LoopDevice> List(string sysBlock = "/sys/block")
    {
        var list = new List<LoopDevice>();
        if (!Directory.Exists(sysBlock)) return list;
        foreach (var dir in Directory.EnumerateDirectories(sysBlock, "loop*"))
        {
            try
            {
                var backing = File.ReadAllText(Path.Combine(dir, "loop", "backing_file")).Trim();
                list.Add(new LoopDevice("/dev/" + Path.GetFileName(dir), backing));
            }
            catch (IOException)
            {
                // Not attached (no loop/ directory) or detached while being read.
            }
        }

        return list;
    }
}
