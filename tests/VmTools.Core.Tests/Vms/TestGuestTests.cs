using System.Diagnostics;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.Vms;

/// <summary>The shared test guest boots under qemu and its modules load in dependency order.</summary>
public sealed class TestGuestTests
{
    [Fact]
    public void ModuleDependencies_AreReadFromModinfo()
    {
        var kernel = TestGuest.Kernel;
        var srMod = Directory.EnumerateFiles(Path.Combine(kernel.ModulesDirectory, "kernel"), "sr_mod.ko", SearchOption.AllDirectories).Single();
        Assert.Contains("cdrom", TestGuest.ModuleDependencies(srMod));
    }

    [Fact]
    public async Task Guest_BootsUnderQemu_LoadsModules_AndPrintsOnTheConsole()
    {
        var qemu = TestGuest.Qemu;
        using var dir = new TempDirectory("vmtools-guest");
        const string init = """
            #!/bin/sh
            mount -t proc proc /proc
            for m in $(cat /lib/modules/load-order); do insmod $m || echo "INSMOD-FAILED $m"; done
            echo "MODULES: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
            echo "EXTRA: $(cat /etc/guest-note)"
            echo VMTOOLS-TEST-GUEST-READY
            poweroff -f
            """;
        var note = dir.Combine("note");
        File.WriteAllText(note, "hello from the host");
        var initrd = TestGuest.BuildInitramfs(dir.Combine("initrd.gz"), init, new[] { "sr_mod", "isofs", "virtio-blk" },
            new Dictionary<string, string> { ["/etc/guest-note"] = note });
        var log = dir.Combine("console.log");
        var args = TestGuest.BootArguments(initrd, log, memoryMb: 128);

        var psi = new ProcessStartInfo(qemu) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(120));
        try
        {
            await p.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
            Assert.Fail("guest did not power off within 120 s; console:\n" + File.ReadAllText(log));
        }

        var console = File.ReadAllText(log);
        Assert.True(p.ExitCode == 0, $"qemu exited {p.ExitCode}: {await stderr}");
        Assert.Contains("VMTOOLS-TEST-GUEST-READY", console);
        Assert.DoesNotContain("INSMOD-FAILED", console);
        var modules = console.Split('\n').Single(l => l.StartsWith("MODULES:", StringComparison.Ordinal));
        foreach (var m in new[] { "sr_mod", "cdrom", "isofs", "virtio_blk" }) Assert.Contains(m, modules);
        Assert.Contains("EXTRA: hello from the host", console);
    }
}
