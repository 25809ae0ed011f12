namespace VmTools.TestSupport;

/// <summary>
/// A small real Debian package standing in for flightctl-agent: a systemd service whose program writes a
/// marker file and stays up. Built with dpkg-deb, so the guest installs it with its own package manager.
/// </summary>
public static class TestAgentPackage
{
    public const string ServiceName = "flightctl-agent";
    public const string MarkerFile = "/var/lib/flightctl-agent/started";

    public static string Build(string directory, string version = "0.0.1")
    {
        var dpkgDeb = RealComponent.RequireProgram("dpkg-deb", "apt-get install dpkg");
        var root = Path.Combine(directory, "agent-pkg");
        Directory.CreateDirectory(Path.Combine(root, "DEBIAN"));
        Directory.CreateDirectory(Path.Combine(root, "usr", "bin"));
        Directory.CreateDirectory(Path.Combine(root, "lib", "systemd", "system"));
        File.WriteAllText(Path.Combine(root, "DEBIAN", "control"), $"""
            Package: {ServiceName}
            Version: {version}
            Architecture: all
            Maintainer: VmTools tests <tests@vmtools.invalid>
            Description: Stand-in agent for VmTools end-to-end tests
             Writes {MarkerFile} when started and stays running.

            """);
        var program = Path.Combine(root, "usr", "bin", ServiceName);
        File.WriteAllText(program, $"""
            #!/bin/sh
            mkdir -p "$(dirname {MarkerFile})"
            echo "started $(cat /proc/sys/kernel/random/boot_id)" > {MarkerFile}
            exec sleep infinity

            """);
        File.SetUnixFileMode(program, (UnixFileMode)0x1ed);
        File.WriteAllText(Path.Combine(root, "lib", "systemd", "system", ServiceName + ".service"), $"""
            [Unit]
            Description=Stand-in flightctl agent (VmTools tests)

            [Service]
            ExecStart=/usr/bin/{ServiceName}
            Restart=on-failure

            [Install]
            WantedBy=multi-user.target

            """);
        var deb = Path.Combine(directory, $"{ServiceName}_{version}_all.deb");
        // A fixed epoch: the package is byte-for-byte reproducible, whatever the caller's SOURCE_DATE_EPOCH.
        var (code, stdout, stderr) = Programs.RunIn(null, new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" }, dpkgDeb, "--root-owner-group", "--build", root, deb);
        if (code != 0) Assert.Fail($"dpkg-deb exited {code}: {stderr}{stdout}");
        Directory.Delete(root, recursive: true);
        return deb;
    }
}
