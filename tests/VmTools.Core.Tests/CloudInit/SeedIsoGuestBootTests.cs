using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using VmTools.Core.CloudInit;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>
/// The seed image as a real Linux kernel sees it: qemu (TCG) boots Debian's kernel with a busybox
/// initramfs that loads virtio_blk + isofs, mounts the image read-only and prints what it finds on
/// the serial console. The test compares that with what it wrote.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SeedIsoGuestBootTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-seedboot");

    public void Dispose() => _temp.Dispose();

    private const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sys /sys
        mount -t devtmpfs dev /dev
        for m in $(cat /lib/modules/load-order); do insmod "$m"; done
        i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
        # busybox-static has no blkid applet: read the primary descriptor's volume id (sector 16, offset 40) directly.
        echo "LABEL: [$(dd if=/dev/vda bs=1 skip=32808 count=32 2>/dev/null | tr -d ' ')]"
        mkdir -p /mnt/seed
        if mount -t iso9660 -o ro /dev/vda /mnt/seed; then
          echo "---USER-DATA-BEGIN---"
          cat /mnt/seed/user-data
          echo "---USER-DATA-END---"
          echo "META: $(cat /mnt/seed/meta-data | tr '\n' '|')"
          echo "SHA: $(sha256sum /mnt/seed/flightctl-config/packages/flightctl-agent-0.9.0-1.x86_64.rpm)"
          echo "KEYMODE: $(stat -c %a /mnt/seed/flightctl-config/certs/client-enrollment.key)"
          echo "SCRIPTMODE: $(stat -c %a /mnt/seed/flightctl-config/setup.sh)"
          echo "BIGSIZE: $(stat -c %s /mnt/seed/big/large-payload.bin)"
          echo "BIGTAIL: $(tail -c 4096 /mnt/seed/big/large-payload.bin | sha256sum)"
          echo "LIST: $(cd /mnt/seed && find . | sort | tr '\n' ' ')"
        else
          echo "MOUNT-FAILED"
        fi
        echo "GUEST-DONE"
        poweroff -f
        """;

    [Fact]
    public async Task LinuxGuest_MountsTheSeed_AndReadsUserDataAndPayload()
    {
        var qemu = TestGuest.Qemu;
        var config = CloudInitConfig.Create(new CloudInitInputs
        {
            ConfigDirectory = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path),
            Hostname = "guest-boot",
            InstanceId = "boot-1",
        });

        // A 1.5 GiB sparse file with data at its end: the kernel must follow an extent far past 2^30.
        var big = _temp.Combine("large-payload.bin");
        var tail = new byte[4096];
        new Random(9).NextBytes(tail);
        using (var f = new FileStream(big, FileMode.CreateNew))
        {
            f.SetLength(3L << 29);
            f.Position = f.Length - tail.Length;
            f.Write(tail);
        }

        var content = NoCloudSeed.ToIsoContent(config).AddFile("big/large-payload.bin", big);
        var iso = IsoImageWriter.Write(content, _temp.Combine("seed.iso"), new IsoImageOptions(), null, TestContext.Current.CancellationToken);

        var initrd = TestGuest.BuildInitramfs(_temp.Combine("initrd.gz"), Init, new[] { "virtio_pci", "virtio_blk", "isofs" });
        var log = _temp.Combine("console.log");
        var args = TestGuest.BootArguments(initrd, log, memoryMb: 256);
        args.AddRange(new[] { "-drive", $"file={iso.Path},if=virtio,format=raw,readonly=on" });
        var psi = new ProcessStartInfo(qemu) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        if (!p.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("the guest did not power off within 120 s; console:\n" + File.ReadAllText(log));
        }

        var console = File.ReadAllText(log).Replace("\r", string.Empty);
        Assert.True(console.Contains("GUEST-DONE"), $"qemu exit {p.ExitCode}: {await stderr}\n{console}");
        Assert.DoesNotContain("MOUNT-FAILED", console);
        Assert.Contains("LABEL: [cidata]", console);

        var begin = console.IndexOf("---USER-DATA-BEGIN---\n", StringComparison.Ordinal) + "---USER-DATA-BEGIN---\n".Length;
        var end = console.IndexOf("---USER-DATA-END---", StringComparison.Ordinal);
        Assert.Equal(NoCloudSeed.UserData(config), console[begin..end]);
        Assert.Contains("META: " + NoCloudSeed.MetaData(config).Replace('\n', '|'), console);

        var rpm = config.Agent!.PackageFiles.Single();
        Assert.Contains($"SHA: {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(rpm))).ToLowerInvariant()}  /mnt/seed/flightctl-config/packages/flightctl-agent-0.9.0-1.x86_64.rpm", console);
        Assert.Contains("KEYMODE: 600", console);
        Assert.Contains("SCRIPTMODE: 755", console);
        Assert.Contains($"BIGSIZE: {3L << 29}", console);
        Assert.Contains($"BIGTAIL: {Convert.ToHexString(SHA256.HashData(tail)).ToLowerInvariant()}", console);
        var listed = console.Split('\n').Single(l => l.StartsWith("LIST: ", StringComparison.Ordinal))[6..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Where(e => e != ".").Select(e => e.TrimStart('.')).Where(e => e.Length > 0 && !content.Files.Contains(e));
        // What the kernel lists beyond the files are exactly the directories holding them.
        Assert.All(listed, d => Assert.Contains(content.Files, f => f.StartsWith(d + "/", StringComparison.Ordinal)));
    }
}
