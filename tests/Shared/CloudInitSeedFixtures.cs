namespace VmTools.TestSupport;

/// <summary>A VM_CONFIG_DIR as prepare_vm_config.sh lays it out: config.yaml, certs/, rpms/, ca.pem, registry.conf.</summary>
public static class CloudInitSeedFixtures
{
    public static string MakeConfigDirectory(string parent, bool certs = true, bool ca = true, bool config = true, string packageExtension = ".rpm")
    {
        var dir = Path.Combine(parent, "vm-config");
        Directory.CreateDirectory(Path.Combine(dir, "certs"));
        Directory.CreateDirectory(Path.Combine(dir, "rpms"));
        if (config) File.WriteAllText(Path.Combine(dir, "config.yaml"), "enrollment-service:\n  service:\n    server: https://enroll.example:7443\n");
        if (certs)
        {
            File.WriteAllText(Path.Combine(dir, "certs", "client-enrollment.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
            File.WriteAllText(Path.Combine(dir, "certs", "client-enrollment.key"), "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n");
        }

        if (ca) File.WriteAllText(Path.Combine(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
        var pkg = new byte[10_000];
        new Random(3).NextBytes(pkg);
        File.WriteAllBytes(Path.Combine(dir, "rpms", "flightctl-agent-0.9.0-1.x86_64" + packageExtension), pkg);
        File.WriteAllText(Path.Combine(dir, "registry.conf"), "[[registry]]\nlocation = \"10.0.2.2:5000\"\ninsecure = true\n");
        return dir;
    }
}
