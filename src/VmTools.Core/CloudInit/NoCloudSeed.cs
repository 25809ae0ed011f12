using System.Text;
using VmTools.Core.CloudInit.Iso9660;
using VmTools.Core.Host;

namespace VmTools.Core.CloudInit;

/// <summary>
/// Renders a <see cref="CloudInitConfig"/> as a NoCloud seed: <c>user-data</c> (#cloud-config),
/// <c>meta-data</c>, <c>network-config</c> (v2) and the payload folder, either as a directory
/// (the layout prepare_cloud_init_config.sh produced) or straight onto an image.
/// </summary>
public static partial class NoCloudSeed
{
    /// <summary>The payload folder's name on the seed, as in the reference layout.</summary>
    public const string PayloadDirectory = "flightctl-config";

    private const UnixFileMode Mode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Mode0644 = Mode0600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode Mode0755 = Mode0644 | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public static string UserData(CloudInitConfig config) => UserData(config, inlinePayloadDirectory: null);

    /// <summary>
    /// The user-data; with <paramref name="inlinePayloadDirectory"/> the agent payload travels inside it
    /// (write_files, base64) to that guest directory and the setup script is pointed there, for seeds that
    /// carry no files of their own (KubeVirt's cloudInitNoCloud holds user-data and network-data only).
    /// </summary>
    public static string UserData(CloudInitConfig config, string? inlinePayloadDirectory)
    {
        var q = YamlText.Quote;
        var y = new StringBuilder("#cloud-config\n");
        y.Append("# Written by VmTools New-CloudInitConfig.\n");
        y.Append("hostname: ").Append(q(config.Hostname)).Append('\n');
        y.Append("preserve_hostname: false\n");
        if (config.Users.Count > 0)
        {
            y.Append("users:\n");
            foreach (var u in config.Users)
            {
                y.Append("  - name: ").Append(q(u.Name)).Append('\n');
                if (u.Sudo is not null) y.Append("    sudo: ").Append(q(u.Sudo)).Append('\n');
                y.Append("    shell: ").Append(q(u.Shell)).Append('\n');
                var hasPassword = u.PasswordHash is not null || u.HasPlainPassword;
                y.Append("    lock_passwd: ").Append(hasPassword ? "false" : "true").Append('\n');
                if (u.PasswordHash is { } hash) y.Append("    passwd: ").Append(q(hash)).Append('\n');
                if (u.PlainPassword is { } plain) y.Append("    plain_text_passwd: ").Append(q(plain)).Append('\n');
                if (u.SshAuthorizedKeys.Count > 0)
                {
                    y.Append("    ssh_authorized_keys:\n");
                    foreach (var k in u.SshAuthorizedKeys) y.Append("      - ").Append(q(k)).Append('\n');
                }
            }

            if (config.Users.Any(u => u.PasswordHash is not null || u.HasPlainPassword)) y.Append("ssh_pwauth: true\n");
        }

        var files = new List<CloudInitWriteFile>(config.WriteFiles);
        if (config.Agent is { } agent) files.Add(new CloudInitWriteFile(SetupScript.GuestPath, SetupScript.Render(agent.ServiceName), "0755"));
        if (files.Count > 0)
        {
            y.Append("write_files:\n");
            foreach (var f in files)
            {
                y.Append("  - path: ").Append(q(f.Path)).Append('\n');
                y.Append("    owner: ").Append(q(f.Owner)).Append('\n');
                y.Append("    permissions: ").Append(q(f.Permissions)).Append('\n');
                y.Append("    content: ").Append(YamlText.Block(f.Content, 6)).Append('\n');
            }

            if (inlinePayloadDirectory is not null && config.Agent is { } inlined)
            {
                foreach (var (rel, source, bytes, mode) in Payload(inlined))
                {
                    var guestPath = inlinePayloadDirectory.TrimEnd('/') + "/" + rel[(PayloadDirectory.Length + 1)..];
                    y.Append("  - path: ").Append(q(guestPath)).Append('\n');
                    y.Append("    owner: \"root:root\"\n");
                    y.Append("    permissions: ").Append(q("0" + Convert.ToString((int)mode, 8))).Append('\n');
                    y.Append("    encoding: b64\n");
                    y.Append("    content: ").Append(Convert.ToBase64String(bytes ?? File.ReadAllBytes(source!))).Append('\n');
                }
            }
        }

        var commands = new List<string>();
        if (config.Agent is not null)
        {
            commands.Add(inlinePayloadDirectory is null
                ? "[" + q(SetupScript.GuestPath) + "]"
                : "[\"env\", " + q("VMTOOLS_PAYLOAD_DIR=" + inlinePayloadDirectory) + ", " + q(SetupScript.GuestPath) + "]");
        }

        commands.AddRange(config.RunCommands.Select(q));
        if (commands.Count > 0)
        {
            y.Append("runcmd:\n");
            foreach (var c in commands) y.Append("  - ").Append(c).Append('\n');
        }

        y.Append("final_message: ").Append(q("VMTOOLS-CLOUD-INIT: done, instance " + config.InstanceId + " after $UPTIME seconds")).Append('\n');
        return y.ToString();
    }

    public static string MetaData(CloudInitConfig config)
        => $"instance-id: {YamlText.Quote(config.InstanceId)}\nlocal-hostname: {YamlText.Quote(config.Hostname)}\n";

    /// <summary>
    /// Network config v2: DHCP on the NIC with the seed's MAC, renamed eth0 (the reference seed's name).
    /// A MAC is the one match every renderer honours: cloud-init turns v2 into ifupdown (ENI),
    /// networkd or sysconfig files with only the MAC and set-name, so a name glob would configure an
    /// interface that does not exist (Debian's ENI renderer writes "iface &lt;id&gt; inet dhcp").
    /// </summary>
    public static string NetworkConfig(CloudInitConfig config)
        => "version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: " + YamlText.Quote(config.MacAddress)
           + "\n    set-name: eth0\n    dhcp4: true\n    dhcp6: false\n";

    /// <summary>
    /// The MAC a network-config names, when it names exactly one (a seed directory written by
    /// New-CloudInitConfig, or by hand in the same form); null otherwise.
    /// </summary>
    public static string? MacAddressIn(string networkConfig)
    {
        var found = MacAddressLine().Matches(networkConfig)
            .Select(m => Vms.MacAddresses.Normalize(m.Groups[1].Value))
            .Distinct()
            .ToList();
        return found is [{ } only] ? only : null;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*macaddress:\s*[""']?([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})[""']?\s*$", System.Text.RegularExpressions.RegexOptions.Multiline)]
    private static partial System.Text.RegularExpressions.Regex MacAddressLine();

    /// <summary>The seed as image content; payload files are streamed from their sources when the image is written.</summary>
    public static IsoContent ToIsoContent(CloudInitConfig config)
    {
        var content = new IsoContent()
            .AddBytes("user-data", Encoding.UTF8.GetBytes(UserData(config)), Mode0600)
            .AddBytes("meta-data", Encoding.UTF8.GetBytes(MetaData(config)))
            .AddBytes("network-config", Encoding.UTF8.GetBytes(NetworkConfig(config)));
        if (config.Agent is { } agent)
        {
            foreach (var (isoPath, source, bytes, mode) in Payload(agent))
            {
                if (bytes is not null) content.AddBytes(isoPath, bytes, mode);
                else content.AddFile(isoPath, source!, mode);
            }
        }

        return content;
    }

    /// <summary>Plans (refusing a directory holding files VmTools did not write, unless forced) and writes the seed directory.</summary>
    public static IReadOnlyList<string> WriteDirectory(CloudInitConfig config, string directory, bool force = false)
        => WriteDirectory(config, SeedDirectory.Plan(directory, force));

    /// <summary>
    /// Writes the seed directory as planned. The seed is assembled in a staging folder on the same
    /// filesystem and moved in: a new directory arrives whole by one rename; in an existing one only the
    /// seed-layout names are swapped (the previous ones restored if a move fails), so entries VmTools did
    /// not write are never touched.
    /// </summary>
    public static IReadOnlyList<string> WriteDirectory(CloudInitConfig config, SeedDirectory plan)
    {
        var target = plan.Path;
        var stagingParent = plan.Exists ? target : Path.GetDirectoryName(target)!;
        var tag = Guid.NewGuid().ToString("N")[..8];
        var staging = plan.Exists
            ? Path.Combine(target, SeedDirectory.MarkerName + "." + tag + ".new")
            : Path.Combine(stagingParent, "." + Path.GetFileName(target) + "." + tag + ".new");
        var old = Path.Combine(target, SeedDirectory.MarkerName + "." + tag + ".old");
        var written = new List<string>();
        var movedOut = new List<string>();
        var movedIn = new List<string>();
        try
        {
            Directory.CreateDirectory(stagingParent);
            // The seed carries keys and passwords: only the owner may enter it.
            PrivateFiles.CreateDirectory(staging);
            void Put(string rel, string? source, byte[]? bytes, UnixFileMode mode)
            {
                var path = Path.Combine(staging, rel);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                if (bytes is not null) AtomicFile.WriteAllBytes(path, bytes, mode);
                else
                {
                    File.Copy(source!, path);
                    if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, mode);
                }

                if (rel != SeedDirectory.MarkerName) written.Add(Path.Combine(target, rel));
            }

            Put("user-data", null, Encoding.UTF8.GetBytes(UserData(config)), Mode0600);
            Put("meta-data", null, Encoding.UTF8.GetBytes(MetaData(config)), Mode0644);
            Put("network-config", null, Encoding.UTF8.GetBytes(NetworkConfig(config)), Mode0644);
            if (config.Agent is { } agent)
            {
                foreach (var (rel, source, bytes, mode) in Payload(agent)) Put(rel, source, bytes, mode);
            }

            Put(SeedDirectory.MarkerName, null, Encoding.UTF8.GetBytes(SeedDirectory.MarkerText), Mode0644);

            if (!plan.Exists)
            {
                Directory.Move(staging, target);
                return written;
            }

            // Names VmTools wrote before (or, forced, seed-layout names found here) go out, the new ones come in.
            Directory.CreateDirectory(old);
            foreach (var name in plan.Replaced.Where(n => SeedDirectory.IsLayoutName(n) && n != Path.GetFileName(staging) && n != Path.GetFileName(old)))
            {
                var from = Path.Combine(target, name);
                if (!Path.Exists(from)) continue;
                Move(from, Path.Combine(old, name));
                movedOut.Add(name);
            }

            foreach (var entry in new DirectoryInfo(staging).EnumerateFileSystemInfos())
            {
                Move(entry.FullName, Path.Combine(target, entry.Name));
                movedIn.Add(entry.Name);
            }

            TryDeleteDirectory(old);
            TryDeleteDirectory(staging);
            return written;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Put back what was there: the new entries out, the previous ones in.
            foreach (var name in movedIn) TryDelete(Path.Combine(target, name));
            foreach (var name in movedOut) TryMove(Path.Combine(old, name), Path.Combine(target, name));
            TryDeleteDirectory(old);
            TryDeleteDirectory(staging);
            throw new VmToolsException("CloudInitSeedWriteFailed", FailureKind.WriteError, $"Cannot write the seed directory '{target}': {e.Message}", e) { Target = target };
        }
        catch
        {
            TryDeleteDirectory(staging);
            if (plan.Exists && movedOut.Count == 0) TryDeleteDirectory(old);
            throw;
        }
    }

    private static void Move(string from, string to)
    {
        if (Directory.Exists(from) && new FileInfo(from).LinkTarget is null) Directory.Move(from, to);
        else File.Move(from, to);
    }

    private static void TryMove(string from, string to)
    {
        try { Move(from, to); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path) && new FileInfo(path).LinkTarget is null) Directory.Delete(path, recursive: true);
            else File.Delete(path);
        }
        catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static IEnumerable<(string Path, string? Source, byte[]? Bytes, UnixFileMode Mode)> Payload(AgentPayload agent)
    {
        var p = PayloadDirectory + "/";
        yield return (p + "config.yaml", agent.ConfigFile, null, Mode0644);
        foreach (var cert in agent.CertificateFiles) yield return (p + "certs/" + Path.GetFileName(cert), cert, null, Mode0600);
        yield return (p + "ca.pem", agent.CaCertificateFile, null, Mode0644);
        foreach (var pkg in agent.PackageFiles) yield return (p + "packages/" + Path.GetFileName(pkg), pkg, null, Mode0644);
        if (agent.RegistryConfig is { } reg) yield return (p + "registry.conf", null, Encoding.UTF8.GetBytes(reg), Mode0644);
        yield return (p + "setup.sh", null, Encoding.UTF8.GetBytes(SetupScript.Render(agent.ServiceName)), Mode0755);
    }

    private static void TryDeleteDirectory(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
