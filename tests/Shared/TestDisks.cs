namespace VmTools.TestSupport;

/// <summary>Real qcow2 files made by qemu-img from seeded random data, so every byte matters in comparisons.</summary>
public static class TestDisks
{
    public static string CreateQcow2(string path, int megabytes, int seed = 1, string? backingFile = null)
    {
        var qemuImg = RealComponent.RequireProgram("qemu-img", "apt-get install qemu-utils");
        if (backingFile is not null)
        {
            Programs.MustRun(qemuImg, "create", "-q", "-f", "qcow2", "-b", backingFile, "-F", "qcow2", path);
            return path;
        }

        var raw = path + ".raw";
        var rng = new Random(seed);
        var chunk = new byte[1 << 20];
        using (var fs = File.Create(raw))
        {
            for (var i = 0; i < megabytes; i++)
            {
                rng.NextBytes(chunk);
                fs.Write(chunk);
            }
        }

        Programs.MustRun(qemuImg, "convert", "-q", "-f", "raw", "-O", "qcow2", raw, path);
        File.Delete(raw);
        return path;
    }

    public static bool SameBytes(string a, string b)
    {
        var fa = new FileInfo(a);
        var fb = new FileInfo(b);
        if (fa.Length != fb.Length) return false;
        using var sa = fa.OpenRead();
        using var sb = fb.OpenRead();
        var ba = new byte[1 << 20];
        var bb = new byte[1 << 20];
        while (true)
        {
            var na = sa.ReadAtLeast(ba, ba.Length, throwOnEndOfStream: false);
            var nb = sb.ReadAtLeast(bb, bb.Length, throwOnEndOfStream: false);
            if (na != nb || !ba.AsSpan(0, na).SequenceEqual(bb.AsSpan(0, nb))) return false;
            if (na == 0) return true;
        }
    }
}
