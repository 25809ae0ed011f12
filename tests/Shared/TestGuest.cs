using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using VmTools.Core.Vms;

namespace VmTools.TestSupport;

/// <summary>A Debian kernel unpacked for direct boot: an uncompressed ELF (boots via PVH) and its module tree.</summary>
public sealed record GuestKernel(string Version, string VmlinuxPath, string ModulesDirectory);

/// <summary>
/// A tiny bootable guest for qemu under TCG, built from Debian's own packages: the kernel from
/// <c>linux-image-&lt;ver&gt;-amd64</c> (downloaded, never installed) and busybox-static for userland.
/// The kernel is unpacked once per machine into <c>/var/tmp/vmtools-test-guest/&lt;ver&gt;</c>
/// (<c>VMTOOLS_TEST_GUEST_CACHE</c> overrides the root) under a cross-process file lock, so parallel
/// test classes and test processes share one download.
/// </summary>
/// <remarks>
/// Why vmlinux and not the bzImage: the bzImage decompresses itself slowly under TCG (~3 s); the ELF
/// vmlinux inside it boots via PVH and prints on ttyS0 in ~2 s. Missing tools or an unreachable
/// package mirror stop the test through <see cref="RealComponent.Unavailable"/> with the reason.
/// </remarks>
public static class TestGuest
{
    private const string ReadyMarker = "ready";
    private static readonly object Gate = new();
    private static GuestKernel? _kernel;
    private static string? _failure;
    private static Dictionary<string, string>? _moduleIndex;

    /// <summary>The cache root: <c>$VMTOOLS_TEST_GUEST_CACHE</c> or <c>/var/tmp/vmtools-test-guest</c>.</summary>
    public static string CacheRoot => Environment.GetEnvironmentVariable("VMTOOLS_TEST_GUEST_CACHE") is { Length: > 0 } v
        ? Path.GetFullPath(v)
        : "/var/tmp/vmtools-test-guest";

    /// <summary>The guest kernel, built on first use (download + unpack ≈ 10 s) and reused from the cache after.</summary>
    public static GuestKernel Kernel
    {
        get
        {
            lock (Gate)
            {
                if (_kernel is null && _failure is null)
                {
                    try { _kernel = LoadOrBuild(); }
                    catch (GuestUnavailableException e) { _failure = e.Message; }
                }

                if (_failure is not null) RealComponent.Unavailable("test guest kernel: " + _failure);
                return _kernel!;
            }
        }
    }

    /// <summary>The qemu binary, or the test stops with the reason.</summary>
    public static string Qemu => RealComponent.RequireProgram("qemu-system-x86_64", "apt-get install qemu-system-x86");

    /// <summary>
    /// Writes a gzip'd newc cpio to <paramref name="destinationPath"/> holding busybox-static at /bin/busybox
    /// with every applet linked (/bin/sh, /sbin/insmod, ...), <c>/init</c> = <paramref name="initScript"/>,
    /// the named kernel modules plus everything they depend on under <c>/lib/modules/&lt;ver&gt;/</c>, and
    /// <paramref name="extraFiles"/>. Returns <paramref name="destinationPath"/>.
    /// </summary>
    /// <param name="initScript">The whole /init, including its <c>#!/bin/sh</c> line.</param>
    /// <param name="modules">Module names as modprobe knows them (<c>isofs</c>, <c>sr_mod</c>, <c>virtio_blk</c>); '-' and '_' are equal.
    /// In the guest, <c>/lib/modules/load-order</c> lists the .ko paths dependencies first (so
    /// <c>for m in $(cat /lib/modules/load-order); do insmod $m; done</c> works), and busybox
    /// <c>modprobe NAME</c> works too (a modules.dep is written). Built-in modules are skipped.</param>
    /// <param name="extraFiles">Path inside the initramfs → path of a host file to copy there (its mode is kept).</param>
    public static string BuildInitramfs(string destinationPath, string initScript, IEnumerable<string> modules, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        var busybox = RealComponent.RequireProgram("busybox", "apt-get install busybox-static");
        var kernel = Kernel;
        var archive = new CpioArchive();
        foreach (var dir in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "mnt", "etc", "root", "lib/modules" })
        {
            archive.Directory(dir);
        }

        archive.CharDevice("dev/console", 5, 1);
        archive.CharDevice("dev/null", 1, 3);
        archive.CharDevice("dev/ttyS0", 4, 64);
        archive.File("bin/busybox", File.ReadAllBytes(busybox), 0b111_101_101);
        var applets = Programs.Run(busybox, "--list-full");
        if (applets.ExitCode != 0) RealComponent.Unavailable($"'{busybox} --list-full' failed ({applets.Stderr.Trim()}): is it busybox-static?");
        foreach (var applet in applets.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (applet != "bin/busybox") archive.Symlink(applet, "/bin/busybox");
        }

        archive.File("init", Encoding.UTF8.GetBytes(initScript), 0b111_101_101);

        var ordered = ResolveModules(kernel, modules);
        if (ordered.Count > 0)
        {
            var guestRoot = $"lib/modules/{kernel.Version}";
            var dep = new StringBuilder();
            foreach (var (relative, deps) in ordered)
            {
                archive.File($"{guestRoot}/{relative}", File.ReadAllBytes(Path.Combine(kernel.ModulesDirectory, relative)), 0b110_100_100);
                // modules.dep lists a module's dependencies so that the last one is loaded first.
                dep.Append(relative).Append(':');
                foreach (var d in Enumerable.Reverse(deps)) dep.Append(' ').Append(d);
                dep.Append('\n');
            }

            archive.File($"{guestRoot}/modules.dep", Encoding.ASCII.GetBytes(dep.ToString()), 0b110_100_100);
            archive.File("lib/modules/load-order", Encoding.ASCII.GetBytes(string.Concat(ordered.Select(m => $"/{guestRoot}/{m.Relative}\n"))), 0b110_100_100);
        }

        if (extraFiles is not null)
        {
            foreach (var (guestPath, hostPath) in extraFiles)
            {
                var mode = OperatingSystem.IsWindows() ? 0b110_100_100 : (int)File.GetUnixFileMode(hostPath) & 0xFFF;
                archive.File(guestPath.TrimStart('/'), File.ReadAllBytes(hostPath), mode);
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destinationPath))!);
        var temp = destinationPath + ".tmp-" + Environment.ProcessId;
        using (var file = File.Create(temp))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
        {
            archive.WriteTo(gz);
        }

        File.Move(temp, destinationPath, overwrite: true);
        return destinationPath;
    }

    /// <summary>
    /// The accelerator the rig boots with: the core's decision (<see cref="AcceleratorProbe"/>, which
    /// honours VMTOOLS_ACCELERATOR), so tests run on whatever this host can really run.
    /// </summary>
    public static VmAccelerator Accelerator => AcceleratorProbe.Host.Choose(null).Accelerator;

    /// <summary>
    /// The rig's kernel command line: console, no reboot loop, and the core's slow-host arguments (TCG on a
    /// busy machine). Not quiet: when a boot is slow or stuck, the console a failing test prints shows where.
    /// </summary>
    public static string KernelArgs(string extra = "")
        => $"console=ttyS0 panic=-1 {QemuCommandLine.SlowHostKernelArgs} {extra}".Trim();

    /// <summary>
    /// The argv (after the qemu binary) that boots <paramref name="initramfsPath"/> with the test kernel,
    /// serial console to <paramref name="consoleLogPath"/>, no devices unless added, poweroff ends qemu.
    /// </summary>
    public static List<string> BootArguments(string initramfsPath, string consoleLogPath, int memoryMb = 128, string extraKernelArgs = "")
    {
        var kernel = Kernel;
        return new List<string>(QemuCommandLine.AcceleratorArguments(Accelerator))
        {
            "-m", memoryMb.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-nodefaults", "-no-reboot", "-display", "none", "-serial", "file:" + consoleLogPath, "-monitor", "none",
            "-kernel", kernel.VmlinuxPath, "-initrd", initramfsPath,
            "-append", KernelArgs(extraKernelArgs),
        };
    }

    /// <summary>The module named and its dependencies, each before its dependents, with paths relative to the module root.</summary>
    private static List<(string Relative, List<string> Deps)> ResolveModules(GuestKernel kernel, IEnumerable<string> modules)
    {
        var index = ModuleIndex(kernel);
        var builtin = File.ReadAllLines(Path.Combine(kernel.ModulesDirectory, "modules.builtin"))
            .Select(l => Normalize(Path.GetFileNameWithoutExtension(l))).ToHashSet();
        var ordered = new List<(string, List<string>)>();
        var done = new Dictionary<string, List<string>>();

        List<string> Visit(string name, Stack<string> path)
        {
            name = Normalize(name);
            if (done.TryGetValue(name, out var known)) return known;
            if (!index.TryGetValue(name, out var relative))
            {
                if (builtin.Contains(name)) return done[name] = new List<string>();
                throw new ArgumentException($"Kernel {kernel.Version} has no module '{name}'.", nameof(modules));
            }

            if (path.Contains(name)) throw new InvalidOperationException($"Module dependency cycle through '{name}'.");
            path.Push(name);
            var all = new List<string>();
            foreach (var dep in ModuleDependencies(Path.Combine(kernel.ModulesDirectory, relative)))
            {
                foreach (var d in Visit(dep, path).Append(index.GetValueOrDefault(Normalize(dep))).OfType<string>())
                {
                    if (!all.Contains(d)) all.Add(d);
                }
            }

            path.Pop();
            ordered.Add((relative, all));
            return done[name] = all;
        }

        foreach (var m in modules) Visit(m, new Stack<string>());
        return ordered;
    }

    private static string Normalize(string moduleName) => moduleName.Replace('-', '_');

    private static Dictionary<string, string> ModuleIndex(GuestKernel kernel)
    {
        lock (Gate)
        {
            return _moduleIndex ??= Directory.EnumerateFiles(Path.Combine(kernel.ModulesDirectory, "kernel"), "*.ko", SearchOption.AllDirectories)
                .ToDictionary(p => Normalize(Path.GetFileNameWithoutExtension(p)), p => Path.GetRelativePath(kernel.ModulesDirectory, p));
        }
    }

    /// <summary>
    /// The <c>depends=</c> entry of a module's <c>.modinfo</c> ELF section: what depmod itself reads, so no
    /// kmod tools are needed on the host.
    /// </summary>
    internal static IReadOnlyList<string> ModuleDependencies(string koPath)
    {
        var elf = File.ReadAllBytes(koPath);
        if (elf.Length < 64 || elf[0] != 0x7F || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException($"{koPath} is not a little-endian ELF64 module.");
        }

        var shoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x28));
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3A));
        var shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3C));
        var shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3E));
        (int Offset, int Size, int Name) Section(int i)
        {
            var h = elf.AsSpan(shoff + (i * shentsize));
            return ((int)BinaryPrimitives.ReadUInt64LittleEndian(h[0x18..]), (int)BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(h));
        }

        var names = Section(shstrndx);
        for (var i = 0; i < shnum; i++)
        {
            var s = Section(i);
            var nameStart = names.Offset + s.Name;
            var nameEnd = Array.IndexOf(elf, (byte)0, nameStart);
            if (Encoding.ASCII.GetString(elf, nameStart, nameEnd - nameStart) != ".modinfo") continue;
            foreach (var entry in Encoding.ASCII.GetString(elf, s.Offset, s.Size).Split('\0'))
            {
                if (entry.StartsWith("depends=", StringComparison.Ordinal))
                {
                    return entry["depends=".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries);
                }
            }

            return Array.Empty<string>();
        }

        return Array.Empty<string>();
    }

    private static GuestKernel LoadOrBuild()
    {
        Directory.CreateDirectory(CacheRoot);
        using var held = AcquireLock(Path.Combine(CacheRoot, ".build.lock"), TimeSpan.FromMinutes(10));
        var ready = Directory.EnumerateDirectories(CacheRoot)
            .Where(d => File.Exists(Path.Combine(d, ReadyMarker)))
            .OrderByDescending(d => File.GetLastWriteTimeUtc(Path.Combine(d, ReadyMarker)))
            .FirstOrDefault();
        if (ready is not null) return Describe(ready, Path.GetFileName(ready));

        var version = CurrentKernelVersion();
        var work = Path.Combine(CacheRoot, $".{version}.partial-{Environment.ProcessId}");
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
        try
        {
            Need("apt-get", "Debian apt");
            Need("dpkg-deb", "dpkg");
            var package = "linux-image-" + version;
            Run(work, "apt-get", "download", package);
            var deb = Directory.EnumerateFiles(work, package + "_*.deb").SingleOrDefault()
                ?? throw new GuestUnavailableException($"apt-get download {package} left no .deb in {work}.");
            var unpacked = Path.Combine(work, "unpacked");
            Run(work, "dpkg-deb", "-x", deb, unpacked);
            ExtractVmlinux(Path.Combine(unpacked, "boot", "vmlinuz-" + version), Path.Combine(work, "vmlinux"));
            Directory.CreateDirectory(Path.Combine(work, "lib", "modules"));
            Directory.Move(Path.Combine(unpacked, "lib", "modules", version), Path.Combine(work, "lib", "modules", version));
            Directory.Delete(unpacked, recursive: true);
            File.Delete(deb);
            File.WriteAllText(Path.Combine(work, ReadyMarker), version + "\n");
            var final = Path.Combine(CacheRoot, version);
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(work, final);
            return Describe(final, version);
        }
        catch
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static GuestKernel Describe(string dir, string version)
        => new(version, Path.Combine(dir, "vmlinux"), Path.Combine(dir, "lib", "modules", version));

    /// <summary>The ABI name the <c>linux-image-amd64</c> metapackage points at, e.g. <c>6.1.0-56-amd64</c>.</summary>
    private static string CurrentKernelVersion()
    {
        Need("apt-cache", "Debian apt");
        var (code, stdout, stderr) = Programs.Run("apt-cache", "depends", "linux-image-amd64");
        if (code != 0) throw new GuestUnavailableException($"apt-cache depends linux-image-amd64 failed: {stderr.Trim()}");
        const string prefix = "Depends: linux-image-";
        foreach (var line in stdout.Split('\n').Select(l => l.Trim()))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal) && line.EndsWith("-amd64", StringComparison.Ordinal) && char.IsDigit(line[prefix.Length]))
            {
                return line[prefix.Length..];
            }
        }

        throw new GuestUnavailableException("apt-cache depends linux-image-amd64 names no versioned kernel package (run apt-get update?).");
    }

    /// <summary>
    /// Pulls the compressed kernel out of a bzImage by its boot-protocol header (the same payload
    /// extract-vmlinux finds by magic): setup_sects at 0x1F1, payload_offset/payload_length at 0x248,
    /// relative to the protected-mode code; the build appends the 4-byte uncompressed size.
    /// </summary>
    internal static void ExtractVmlinux(string bzImage, string destination)
    {
        var image = File.ReadAllBytes(bzImage);
        if (image.Length < 0x260 || Encoding.ASCII.GetString(image, 0x202, 4) != "HdrS")
        {
            throw new GuestUnavailableException($"{bzImage} is not a bzImage (no HdrS header).");
        }

        var setupSectors = image[0x1F1] == 0 ? 4 : image[0x1F1];
        var start = ((setupSectors + 1) * 512) + (int)BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(0x248));
        var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(0x24C));
        var payload = image.AsMemory(start, length);
        var span = payload.Span;
        var temp = destination + ".tmp";
        if (span.StartsWith(new byte[] { 0xFD, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0 }))
        {
            Decompress("xz", payload[..^4], temp);
        }
        else if (span.StartsWith(new byte[] { 0x28, 0xB5, 0x2F, 0xFD }))
        {
            Decompress("zstd", payload[..^4], temp);
        }
        else if (span.StartsWith(new byte[] { 0x1F, 0x8B }))
        {
            using var input = new GZipStream(new MemoryStream(payload.ToArray()), CompressionMode.Decompress);
            using var output = File.Create(temp);
            input.CopyTo(output);
        }
        else
        {
            throw new GuestUnavailableException($"{bzImage}: unsupported kernel compression (payload starts {Convert.ToHexString(span[..4])}).");
        }

        using (var check = File.OpenRead(temp))
        {
            var magic = new byte[4];
            check.ReadExactly(magic);
            if (magic[0] != 0x7F || magic[1] != (byte)'E' || magic[2] != (byte)'L' || magic[3] != (byte)'F')
            {
                throw new GuestUnavailableException($"{bzImage}: the decompressed payload is not an ELF vmlinux.");
            }
        }

        File.Move(temp, destination, overwrite: true);
    }

    private static void Decompress(string tool, ReadOnlyMemory<byte> payload, string destination)
    {
        Need(tool, $"apt-get install {(tool == "xz" ? "xz-utils" : tool)}");
        var psi = new ProcessStartInfo(tool) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-dc");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var copy = Task.Run(() =>
        {
            using var output = File.Create(destination);
            p.StandardOutput.BaseStream.CopyTo(output);
        });
        p.StandardInput.BaseStream.Write(payload.Span);
        p.StandardInput.Close();
        copy.Wait();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new GuestUnavailableException($"{tool} -dc of the kernel payload failed: {stderr.Result.Trim()}");
    }

    private static void Need(string program, string hint)
    {
        if (RealComponent.Which(program) is null) throw new GuestUnavailableException($"'{program}' is not installed ({hint}).");
    }

    private static void Run(string workingDirectory, string program, params string[] args)
    {
        var (code, stdout, stderr) = Programs.RunIn(workingDirectory, null, program, args);
        if (code != 0) throw new GuestUnavailableException($"'{program} {string.Join(' ', args)}' exited {code}: {(stderr + stdout).Trim()}");
    }

    /// <summary>An exclusive lock across processes: .NET takes flock(LOCK_EX) for FileShare.None on Unix.</summary>
    private static FileStream AcquireLock(string path, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (deadline.Elapsed < timeout)
            {
                Thread.Sleep(200);
            }
        }
    }

    private sealed class GuestUnavailableException(string message) : Exception(message);

    /// <summary>The newc ("070701") cpio format the kernel unpacks into its initramfs; parents are added before children.</summary>
    private sealed class CpioArchive
    {
        private readonly SortedDictionary<string, (int Mode, byte[] Data, int RdevMajor, int RdevMinor)> _entries = new(StringComparer.Ordinal);

        public void Directory(string path)
        {
            path = path.Trim('/');
            if (path.Length == 0 || _entries.ContainsKey(path)) return;
            var parent = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(parent)) Directory(parent);
            _entries[path] = (0x4000 | 0b111_101_101, Array.Empty<byte>(), 0, 0);
        }

        public void File(string path, byte[] data, int permissions) => Add(path, (0x8000 | permissions, data, 0, 0));

        public void Symlink(string path, string target) => Add(path, (0xA000 | 0b111_111_111, Encoding.UTF8.GetBytes(target), 0, 0));

        public void CharDevice(string path, int major, int minor) => Add(path, (0x2000 | 0b110_000_000, Array.Empty<byte>(), major, minor));

        public void WriteTo(Stream output)
        {
            var ino = 1;
            // Ordinal order puts "a" before "a/b", so every directory precedes its contents.
            foreach (var (name, e) in _entries) Write(output, name, e.Mode, e.Data, e.RdevMajor, e.RdevMinor, ino++);
            Write(output, "TRAILER!!!", 0, Array.Empty<byte>(), 0, 0, 0);
        }

        private void Add(string path, (int, byte[], int, int) entry)
        {
            path = path.Trim('/');
            var parent = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(parent)) Directory(parent);
            _entries[path] = entry;
        }

        private static void Write(Stream output, string name, int mode, byte[] data, int rdevMajor, int rdevMinor, int ino)
        {
            var nameBytes = Encoding.UTF8.GetBytes(name);
            var isDir = (mode & 0xF000) == 0x4000;
            var header = string.Concat(
                "070701",
                Hex(ino), Hex(mode), Hex(0), Hex(0), Hex(isDir ? 2 : 1), Hex(0), Hex(data.Length),
                Hex(0), Hex(0), Hex(rdevMajor), Hex(rdevMinor), Hex(nameBytes.Length + 1), Hex(0));
            output.Write(Encoding.ASCII.GetBytes(header));
            output.Write(nameBytes);
            output.WriteByte(0);
            Pad(output, 110 + nameBytes.Length + 1);
            output.Write(data);
            Pad(output, data.Length);
        }

        private static string Hex(int v) => v.ToString("X8", System.Globalization.CultureInfo.InvariantCulture);

        private static void Pad(Stream output, int written)
        {
            for (var i = written; i % 4 != 0; i++) output.WriteByte(0);
        }
    }
}
