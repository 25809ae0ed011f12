using System.Text.Json;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.CloudInit;

/// <summary>
/// Debian's cloud-init 22.4, downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into a
/// cache folder (never installed: no units on the host), run with /usr/bin/python3 and PYTHONPATH.
/// Its Python dependencies come from .ci/apt-packages.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class CloudInitPackage
{
    private static readonly object Gate = new();
    private static string? _root;

    private static string CacheRoot => Path.Combine(Path.GetTempPath(), "vmtools-test-cache", "cloud-init");

    public static string Root
    {
        get
        {
            lock (Gate)
            {
                if (_root is not null) return _root;
                RealComponent.RequireProgram("apt-get", "Debian's apt");
                RealComponent.RequireProgram("dpkg-deb", "Debian's dpkg");
                RealComponent.Require(File.Exists("/usr/bin/python3"), "/usr/bin/python3 is missing (apt-get install python3)");
                var missing = Programs.Run("/usr/bin/python3", "-c", "import yaml, jsonschema, jinja2, configobj, jsonpatch, requests, netifaces, serial, oauthlib");
                RealComponent.Require(missing.ExitCode == 0, "cloud-init's Python dependencies are missing (apt-get install python3-yaml python3-jsonschema python3-jinja2 python3-configobj python3-jsonpatch python3-requests python3-netifaces python3-serial python3-oauthlib): " + missing.Stderr.Trim());
                var done = Path.Combine(CacheRoot, "root", "usr", "bin", "cloud-init");
                if (!File.Exists(done))
                {
                    var staging = CacheRoot + "." + Environment.ProcessId + ".new";
                    if (Directory.Exists(staging)) Directory.Delete(staging, true);
                    Directory.CreateDirectory(staging);
                    var download = Programs.RunIn(staging, null, "apt-get", "download", "cloud-init");
                    RealComponent.Require(download.ExitCode == 0, "apt-get download cloud-init failed (is the Debian mirror reachable and `apt-get update` done?): " + download.Stderr.Trim());
                    var deb = Directory.GetFiles(staging, "cloud-init_*.deb").Single();
                    Programs.MustRun("dpkg-deb", "-x", deb, Path.Combine(staging, "root"));
                    Directory.CreateDirectory(Path.GetDirectoryName(CacheRoot)!);
                    if (Directory.Exists(CacheRoot)) Directory.Delete(CacheRoot, true);
                    Directory.Move(staging, CacheRoot);
                }

                _root = Path.Combine(CacheRoot, "root");
                return _root;
            }
        }
    }

    public static (int ExitCode, string Stdout, string Stderr) Python(params string[] args)
        => Programs.RunIn(null, new Dictionary<string, string> { ["PYTHONPATH"] = Path.Combine(Root, "usr", "lib", "python3", "dist-packages") }, "/usr/bin/python3", args);

    /// <summary>`cloud-init schema --config-file FILE`: exit code and everything it printed.</summary>
    public static (int ExitCode, string Output) Schema(string userDataFile)
    {
        var (code, stdout, stderr) = Python(Path.Combine(Root, "usr", "bin", "cloud-init"), "schema", "--config-file", userDataFile);
        return (code, stdout + stderr);
    }

    /// <summary>
    /// `cloud-init devel net-convert`: the files the given renderer (eni, networkd, netplan, sysconfig)
    /// would write into a Debian guest for a network-config, relative path → text.
    /// </summary>
    public static IReadOnlyDictionary<string, string> RenderNetwork(string networkConfigFile, string renderer, string outputDirectory)
    {
        var (code, stdout, stderr) = Python(Path.Combine(Root, "usr", "bin", "cloud-init"), "devel", "net-convert", "--network-data", networkConfigFile,
            "--kind", "yaml", "--output-kind", renderer, "--directory", outputDirectory, "--distro", "debian");
        Assert.True(code == 0, $"net-convert to {renderer} failed: {stdout}{stderr}");
        return Directory.EnumerateFiles(outputDirectory, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(outputDirectory, f), File.ReadAllText);
    }

    /// <summary>A YAML document as cloud-init's own loader reads it, returned as JSON.</summary>
    public static JsonElement LoadYaml(string file)
    {
        var (code, stdout, stderr) = Python("-c", "import json,sys\nfrom cloudinit import util\nprint(json.dumps(util.load_yaml(open(sys.argv[1]).read())))", file);
        Assert.True(code == 0, stderr);
        return JsonDocument.Parse(stdout).RootElement;
    }

    private const string ReadSeedScript = """
        import json, os, sys
        from cloudinit import helpers
        from cloudinit.sources import DataSourceNoCloud
        from cloudinit.net import network_state
        seed, work = sys.argv[1], sys.argv[2]
        os.makedirs(os.path.join(work, "seed"), exist_ok=True)
        os.symlink(seed, os.path.join(work, "seed", "nocloud"))
        paths = helpers.Paths({"cloud_dir": work, "run_dir": os.path.join(work, "run")})
        # fs_label None: read only the seed directory, do not probe block devices.
        ds = DataSourceNoCloud.DataSourceNoCloud({"datasource": {"NoCloud": {"fs_label": None}}}, None, paths)
        if not ds.get_data():
            sys.exit("NoCloud did not claim the seed directory")
        ns = network_state.parse_net_config_data(ds.network_config)
        raw = ds.get_userdata_raw()
        print(json.dumps({
            "seed": ds.seed,
            "instance_id": ds.get_instance_id(),
            "hostname": ds.get_hostname().hostname,
            "network_config": ds.network_config,
            "interfaces": [dict(i) for i in ns.iter_interfaces()],
            "user_data": raw.decode() if isinstance(raw, bytes) else raw,
        }, default=str))
        """;

    /// <summary>What cloud-init's NoCloud datasource reads from a seed directory, as JSON.</summary>
    public static JsonElement ReadSeedDirectory(string seedDirectory, string workDirectory)
    {
        var script = Path.Combine(workDirectory, "read-seed.py");
        Directory.CreateDirectory(workDirectory);
        File.WriteAllText(script, ReadSeedScript);
        var (code, stdout, stderr) = Python(script, seedDirectory, Path.Combine(workDirectory, "cloud"));
        Assert.True(code == 0, $"NoCloud could not read {seedDirectory}: {stderr}");
        return JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
    }
}
