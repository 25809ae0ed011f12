using System.Management.Automation;
using VmTools.TestSupport;

namespace VmTools.Tests.CloudInit;

/// <summary>New-CloudInitConfig and New-CloudInitIso in a real PowerShell engine with the built module imported.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CloudInitCmdletTests : IDisposable
{
    private readonly TempDirectory _temp = new("vmtools-ci-cmdlet");
    private readonly PowerShellHost _ps;

    public CloudInitCmdletTests()
    {
        _ps = new PowerShellHost(new Dictionary<string, string?>
        {
            ["VM_CONFIG_DIR"] = null,
            ["CLOUD_INIT_DIR"] = null,
            ["SOURCE_DATE_EPOCH"] = null,
        });
        // PowerShellHost.SetLocation calls Set-Location, a Management cmdlet this host lacks (its error is non-terminating and lost).
        _ps.Invoke("$ExecutionContext.SessionState.Path.SetLocation($args[0]) | Out-Null", _temp.Path);
        Assert.Equal(_temp.Path, _ps.Invoke("$PWD.ProviderPath").Single().ToString());
    }

    public void Dispose()
    {
        _ps.Dispose();
        _temp.Dispose();
    }

    private string IsoInfo => RealComponent.RequireProgram("isoinfo", "apt-get install genisoimage");

    [Fact]
    public void ConfigPipedToIso_WritesASeedImageReadersUnderstand()
    {
        var configDir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path);
        var iso = _ps.Invoke("New-CloudInitConfig -ConfigDirectory $args[0] -Hostname vm1 -InstanceId i-1 | New-CloudInitIso -Path seed.iso", configDir).Single();
        var path = (string)iso.Properties["Path"].Value;
        Assert.Equal(_temp.Combine("seed.iso"), path);
        Assert.Equal("cidata", iso.Properties["VolumeLabel"].Value);
        Assert.Equal(new FileInfo(path).Length, (long)iso.Properties["Size"].Value);
        var files = ((IEnumerable<string>)iso.Properties["Files"].Value).ToArray();
        Assert.Contains("/flightctl-config/certs/client-enrollment.key", files);
        Assert.Equal("instance-id: \"i-1\"\nlocal-hostname: \"vm1\"\n", Programs.MustRun(IsoInfo, "-i", path, "-R", "-x", "/meta-data"));
        Assert.Contains("Volume id: cidata", Programs.MustRun(IsoInfo, "-d", "-i", path));
    }

    [Fact]
    public void ThreeConfigsPiped_WithAHostnamePattern_WriteThreeSeeds_EachWithItsHostname()
    {
        Directory.CreateDirectory(_temp.Combine("seeds"));
        var isos = _ps.Invoke("'a1', 'b2', 'c3' | ForEach-Object { New-CloudInitConfig -Hostname $_ } | New-CloudInitIso -Path 'seeds/{Hostname}.iso'");
        Assert.Equal(new[] { "a1", "b2", "c3" }.Select(h => _temp.Combine("seeds", h + ".iso")), isos.Select(i => (string)i.Properties["Path"].Value));
        foreach (var host in new[] { "a1", "b2", "c3" })
        {
            Assert.Contains($"local-hostname: \"{host}\"", Programs.MustRun(IsoInfo, "-i", _temp.Combine("seeds", host + ".iso"), "-R", "-x", "/meta-data"));
        }
    }

    [Fact]
    public void InstanceIdPlaceholder_NamesAFolderLevel_AndMacAddressIsKnownToo()
    {
        Directory.CreateDirectory(_temp.Combine("i-7"));
        var iso = _ps.Invoke("New-CloudInitConfig -InstanceId i-7 -MacAddress 52:54:00:00:00:07 | New-CloudInitIso -Path '{InstanceId}/{MacAddress}.iso'").Single();
        Assert.Equal(_temp.Combine("i-7", "52:54:00:00:00:07.iso"), iso.Properties["Path"].Value);
        Assert.True(File.Exists(_temp.Combine("i-7", "52:54:00:00:00:07.iso")));
    }

    [Fact]
    public void TwoConfigsOnOnePatternPath_TheFirstIsWritten_TheSecondIsIsoPathCollision_TheThirdStillWritten()
    {
        var r = _ps.Run("@((New-CloudInitConfig -Hostname same -InstanceId first), (New-CloudInitConfig -Hostname same -InstanceId second), (New-CloudInitConfig -Hostname other -InstanceId third)) | New-CloudInitIso -Path '{Hostname}.iso' -Force");
        var e = Assert.Single(r.Errors);
        Assert.Equal("IsoPathCollision,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceExists, e.CategoryInfo.Category);
        Assert.Equal(_temp.Combine("same.iso"), e.TargetObject);
        Assert.Contains("'first'", e.Exception.Message);
        Assert.Equal(2, r.Output.Count);
        Assert.Contains("instance-id: \"first\"", Programs.MustRun(IsoInfo, "-i", _temp.Combine("same.iso"), "-R", "-x", "/meta-data"));
        Assert.Contains("instance-id: \"third\"", Programs.MustRun(IsoInfo, "-i", _temp.Combine("other.iso"), "-R", "-x", "/meta-data"));
    }

    [Fact]
    public void FixedPath_WithTwoConfigs_WritesTheFirst_AndRefusesTheSecondWithIsoPathNeedsPlaceholder_EvenWithForce()
    {
        var r = _ps.Run("@((New-CloudInitConfig -InstanceId one), (New-CloudInitConfig -InstanceId two)) | New-CloudInitIso -Path seed.iso -Force");
        var e = Assert.Single(r.Errors);
        Assert.Equal("IsoPathNeedsPlaceholder,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Contains("{Hostname}", e.Exception.Message);
        Assert.Single(r.Output);
        Assert.Contains("instance-id: \"one\"", Programs.MustRun(IsoInfo, "-i", _temp.Combine("seed.iso"), "-R", "-x", "/meta-data"));
    }

    [Fact]
    public void UnknownPlaceholder_IsIsoPathPlaceholderUnknown_AndWritesNothing()
    {
        var e = _ps.ExpectError("New-CloudInitConfig -Hostname u | New-CloudInitIso -Path '{Host}.iso'");
        Assert.Equal("IsoPathPlaceholderUnknown,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.Contains("{Hostname}, {InstanceId}, {MacAddress}", e.Exception.Message);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void PlaceholderValueDotDot_IsIsoPathPlaceholderEscapes_AndNothingLandsOutsideTheFolder()
    {
        Directory.CreateDirectory(_temp.Combine("seeds", "inner"));
        var e = _ps.ExpectError("New-CloudInitConfig -Hostname h -InstanceId '..' | New-CloudInitIso -Path 'seeds/inner/{InstanceId}/seed.iso'");
        Assert.Equal("IsoPathPlaceholderEscapes,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.False(File.Exists(_temp.Combine("seeds", "seed.iso")));
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Combine("seeds", "inner")));
    }

    [Theory]
    [InlineData(".", "{InstanceId}")]
    [InlineData("x", "{Hostname}-cloudinit-data.iso")]
    public void PlaceholderValueThatIsNoFileName_IsIsoPathPlaceholderInvalid(string instanceId, string pattern)
    {
        // Hostname: four 63-character labels (253 characters, valid), which with the suffix exceeds a 255-byte file name.
        var longHost = string.Join('.', Enumerable.Repeat(new string('h', 63), 4))[..253];
        var e = _ps.ExpectError("New-CloudInitConfig -Hostname $args[0] -InstanceId $args[1] | New-CloudInitIso -Path $args[2]", longHost, instanceId, pattern);
        Assert.Equal("IsoPathPlaceholderInvalid,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void PlaceholderWithSourceDirectory_IsIsoPathPlaceholderNeedsConfig()
    {
        _ps.Invoke("New-CloudInitConfig -Hostname plain -OutputDirectory seed | Out-Null");
        var e = _ps.ExpectError("New-CloudInitIso -SourceDirectory seed -Path '{Hostname}.iso'");
        Assert.Equal("IsoPathPlaceholderNeedsConfig,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
    }

    [Fact]
    public void WhatIf_WithAPattern_NamesEachExpandedPath_AndWritesNothing()
    {
        var r = _ps.Run("@((New-CloudInitConfig -Hostname w1), (New-CloudInitConfig -Hostname w2)) | New-CloudInitIso -Path '{Hostname}.iso' -WhatIf");
        Assert.Empty(r.Errors);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void ConfigFromVmConfigDirEnvironment_WritesSeedToCloudInitDir()
    {
        _ps.SetEnv("VM_CONFIG_DIR", CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path));
        _ps.SetEnv("CLOUD_INIT_DIR", _temp.Combine("bin", "cloud-init-data"));
        var cfg = _ps.Invoke("New-CloudInitConfig -RegistryAddress 10.0.2.2:5000 -RegistryInsecure").Single();
        Assert.Equal("flightctl-agent", ((dynamic)cfg.Properties["Agent"].Value).ServiceName);
        Assert.True(File.Exists(_temp.Combine("bin", "cloud-init-data", "user-data")));
        Assert.True(File.Exists(_temp.Combine("bin", "cloud-init-data", "flightctl-config", "packages", "flightctl-agent-0.9.0-1.x86_64.rpm")));
        Assert.Equal("[[registry]]\nlocation = \"10.0.2.2:5000\"\ninsecure = true\n", File.ReadAllText(_temp.Combine("bin", "cloud-init-data", "flightctl-config", "registry.conf")));
    }

    [Fact]
    public void SourceDirectory_ImagesAnExistingSeed()
    {
        _ps.Invoke("New-CloudInitConfig -Hostname plain -OutputDirectory seed | Out-Null");
        var iso = _ps.Invoke("New-CloudInitIso -SourceDirectory seed -Path plain.iso").Single();
        Assert.Equal(new[] { "/meta-data", "/network-config", "/user-data" }, (IEnumerable<string>)iso.Properties["Files"].Value);
    }

    /// <summary>New-CloudInitIso writes on the pipeline thread (RunCoreHere): Ctrl+C there still stops the pipeline, and no image or temporary file is left.</summary>
    [Fact]
    public void CtrlC_WhileALargeSeedIsWritten_StopsThePipeline_AndLeavesNoImage()
    {
        _ps.Invoke("New-CloudInitConfig -Hostname big -OutputDirectory seed | Out-Null");
        // Sparse: seconds of reading (progress comes every 200 ms) for no disk space, and the image stays sparse too.
        using (var payload = File.Create(_temp.Combine("seed", "payload.bin"))) payload.SetLength(3L << 30);
        var (stopped, progress) = _ps.RunAndStop("New-CloudInitIso -SourceDirectory seed -Path big.iso", p => p.RecordType == ProgressRecordType.Processing);
        Assert.True(stopped, "New-CloudInitIso should have been stopped by Ctrl+C");
        Assert.NotEmpty(progress);
        Assert.Equal(new[] { _temp.Combine("seed") }, Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void WhatIf_WritesNothing()
    {
        _ps.Invoke("New-CloudInitConfig -Hostname w -OutputDirectory seed -WhatIf | New-CloudInitIso -Path w.iso -WhatIf");
        Assert.False(Directory.Exists(_temp.Combine("seed")));
        Assert.False(File.Exists(_temp.Combine("w.iso")));
    }

    [Fact]
    public void OutputDirectoryDot_InAFolderWithUserFiles_IsRefused_AndEveryFileSurvives()
    {
        File.WriteAllText(_temp.Combine("thesis.txt"), "four years\n");
        Directory.CreateDirectory(_temp.Combine("src"));
        File.WriteAllText(_temp.Combine("src", "main.c"), "int main;\n");
        var e = _ps.ExpectError("New-CloudInitConfig -Hostname x -OutputDirectory .");
        Assert.Equal("CloudInitOutputNotEmpty,VmTools.Commands.NewCloudInitConfigCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceExists, e.CategoryInfo.Category);
        Assert.Equal(_temp.Path, e.TargetObject);
        Assert.Contains("src, thesis.txt", e.Exception.Message);
        Assert.Equal(new[] { "src", "thesis.txt" }, Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("four years\n", File.ReadAllText(_temp.Combine("thesis.txt")));
        Assert.Equal("int main;\n", File.ReadAllText(_temp.Combine("src", "main.c")));
    }

    [Fact]
    public void CloudInitDirPointingAtANonEmptyFolder_IsRefused_AndTheFolderIsUntouched()
    {
        var home = _temp.Combine("home");
        Directory.CreateDirectory(home);
        File.WriteAllText(Path.Combine(home, ".profile"), "PATH=$PATH\n");
        _ps.SetEnv("CLOUD_INIT_DIR", home);
        var e = _ps.ExpectError("New-CloudInitConfig -Hostname x");
        Assert.Equal("CloudInitOutputNotEmpty,VmTools.Commands.NewCloudInitConfigCommand", e.FullyQualifiedErrorId);
        Assert.Contains(".profile", e.Exception.Message);
        Assert.Equal(new[] { ".profile" }, Directory.GetFileSystemEntries(home).Select(Path.GetFileName));
    }

    [Fact]
    public void Force_WritesSeedFilesBesideUnrelatedFiles_WhichSurvive_AndShouldProcessNamesThem()
    {
        File.WriteAllText(_temp.Combine("thesis.txt"), "four years\n");
        File.WriteAllText(_temp.Combine("meta-data"), "instance-id: hand-made\n");
        var r = _ps.Run("New-CloudInitConfig -Hostname forced -OutputDirectory . -Force -Verbose | Out-Null");
        Assert.Empty(r.Errors);
        Assert.Contains(r.Verbose, v => v.Contains("Replace cloud-init seed files meta-data (keeping 1 other entries: thesis.txt)", StringComparison.Ordinal)
                                        && v.Contains(_temp.Path, StringComparison.Ordinal));
        Assert.Equal("four years\n", File.ReadAllText(_temp.Combine("thesis.txt")));
        Assert.Contains("\"forced\"", File.ReadAllText(_temp.Combine("meta-data")));
    }

    [Fact]
    public void PriorSeed_IsReplaced_AndEmptyFolder_IsUsed()
    {
        Directory.CreateDirectory(_temp.Combine("empty"));
        _ps.Invoke("New-CloudInitConfig -Hostname first -OutputDirectory empty | Out-Null");
        var r = _ps.Run("New-CloudInitConfig -Hostname second -OutputDirectory empty -Verbose | Out-Null");
        Assert.Empty(r.Errors);
        Assert.Contains(r.Verbose, v => v.Contains("Replace cloud-init seed files meta-data, network-config, user-data", StringComparison.Ordinal));
        Assert.Contains("\"second\"", File.ReadAllText(_temp.Combine("empty", "meta-data")));
        Assert.Equal(new[] { ".vmtools-seed", "meta-data", "network-config", "user-data" },
            Directory.GetFileSystemEntries(_temp.Combine("empty")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ExistingImage_NeedsForce()
    {
        File.WriteAllText(_temp.Combine("seed.iso"), "old");
        var e = _ps.ExpectError("New-CloudInitConfig | New-CloudInitIso -Path seed.iso");
        Assert.Equal("IsoOutputExists,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceExists, e.CategoryInfo.Category);
        Assert.Equal("old", File.ReadAllText(_temp.Combine("seed.iso")));
        _ps.Invoke("New-CloudInitConfig | New-CloudInitIso -Path seed.iso -Force");
        Assert.NotEqual("old", File.ReadAllText(_temp.Combine("seed.iso")));
    }

    [Theory]
    [InlineData("certs", "CloudInitCertificatesNotFound")]
    [InlineData("ca", "CloudInitCaCertificateNotFound")]
    [InlineData("config", "CloudInitAgentConfigNotFound")]
    public void MissingRequiredInput_FailsWithItsErrorId_AndWritesNoSeed(string missing, string errorId)
    {
        var dir = CloudInitSeedFixtures.MakeConfigDirectory(_temp.Path, certs: missing != "certs", ca: missing != "ca", config: missing != "config");
        var e = _ps.ExpectError("New-CloudInitConfig -ConfigDirectory $args[0] -OutputDirectory seed", dir);
        Assert.Equal(errorId + ",VmTools.Commands.NewCloudInitConfigCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.False(Directory.Exists(_temp.Combine("seed")));
    }

    [Fact]
    public void SeedDirectoryWithoutUserData_IsCloudInitSeedIncomplete()
    {
        Directory.CreateDirectory(_temp.Combine("half"));
        File.WriteAllText(_temp.Combine("half", "meta-data"), "instance-id: x\n");
        var e = _ps.ExpectError("New-CloudInitIso -SourceDirectory half -Path half.iso");
        Assert.Equal("CloudInitSeedIncomplete,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.False(File.Exists(_temp.Combine("half.iso")));
    }

    [Fact]
    public void NameJolietCannotHold_IsIsoFileNameInvalid_AndNoImage()
    {
        _ps.Invoke("New-CloudInitConfig -OutputDirectory seed | Out-Null");
        File.WriteAllText(_temp.Combine("seed", new string('n', 65)), "x");
        var e = _ps.ExpectError("New-CloudInitIso -SourceDirectory seed -Path bad.iso");
        Assert.Equal("IsoFileNameInvalid,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal(new[] { "seed" }, Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName).Where(n => n != "home"));
    }

    [Fact]
    public void LinkOutOfTheSeed_IsIsoPathEscapesRoot()
    {
        _ps.Invoke("New-CloudInitConfig -OutputDirectory seed | Out-Null");
        File.WriteAllText(_temp.Combine("secret"), "x");
        File.CreateSymbolicLink(_temp.Combine("seed", "leak"), "../secret");
        var e = _ps.ExpectError("New-CloudInitIso -SourceDirectory seed -Path leak.iso");
        Assert.Equal("IsoPathEscapesRoot,VmTools.Commands.NewCloudInitIsoCommand", e.FullyQualifiedErrorId);
        Assert.False(File.Exists(_temp.Combine("leak.iso")));
    }

    [Fact]
    public void Password_NeverAppearsInAnyStream()
    {
        var r = _ps.Run("$p = [System.Net.NetworkCredential]::new('', 'Hunter2-Secret').SecurePassword; New-CloudInitConfig -UserName ci -Password $p -OutputDirectory seed -Verbose | New-CloudInitIso -Path p.iso -Verbose");
        Assert.DoesNotContain("Hunter2", r.AllText);
        Assert.Contains("plain_text_passwd: \"Hunter2-Secret\"", File.ReadAllText(_temp.Combine("seed", "user-data")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_temp.Combine("p.iso")));
    }

    [Fact]
    public void MacAddress_IsNormalized_CarriedOnTheImage_AndBadOnesAreRefused()
    {
        var iso = _ps.Invoke("New-CloudInitConfig -MacAddress 52-54-00-AA-BB-CC -OutputDirectory seed | New-CloudInitIso -Path m.iso").Single();
        Assert.Equal("52:54:00:aa:bb:cc", iso.Properties["MacAddress"].Value);
        Assert.Contains("macaddress: \"52:54:00:aa:bb:cc\"", File.ReadAllText(_temp.Combine("seed", "network-config")));
        // An image of the seed directory (the reference flow: CLOUD_INIT_DIR, then an ISO) carries the same MAC.
        var fromDirectory = _ps.Invoke("New-CloudInitIso -SourceDirectory seed -Path d.iso").Single();
        Assert.Equal("52:54:00:aa:bb:cc", fromDirectory.Properties["MacAddress"].Value);
        var e = _ps.ExpectError("New-CloudInitConfig -MacAddress 03:00:00:00:00:01");
        Assert.Equal("CloudInitMacAddressInvalid,VmTools.Commands.NewCloudInitConfigCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
    }

    [Fact]
    public void BadHostname_IsCloudInitHostnameInvalid()
    {
        var e = _ps.ExpectError("New-CloudInitConfig -Hostname 'not a host'");
        Assert.Equal("CloudInitHostnameInvalid,VmTools.Commands.NewCloudInitConfigCommand", e.FullyQualifiedErrorId);
    }

    [Fact]
    public void SameConfigTwice_GivesIdenticalImages()
    {
        _ps.Invoke("$c = New-CloudInitConfig -InstanceId same -Hostname same; $c | New-CloudInitIso -Path a.iso | Out-Null; $c | New-CloudInitIso -Path b.iso | Out-Null");
        Assert.Equal(File.ReadAllBytes(_temp.Combine("a.iso")), File.ReadAllBytes(_temp.Combine("b.iso")));
    }

    [Fact]
    public void Completers_OfferKnownValues()
    {
        string[] Complete(string line) => _ps.Invoke("(TabExpansion2 -inputScript $args[0] -cursorColumn $args[0].Length).CompletionMatches.CompletionText", line).Select(l => l.ToString()!).ToArray();
        Assert.Contains("cidata", Complete("New-CloudInitIso -VolumeLabel "));
        Assert.Equal(new[] { "flightctl-agent" }, Complete("New-CloudInitConfig -AgentServiceName fl"));
    }

    [Fact]
    public void FormatViews_AreShippedAndNameRealTypesAndProperties()
    {
        // Beside Module/FormatViewTests (which renders every view): a misspelt PropertyName renders as a blank cell, so check each names a real property.
        var moduleDir = Path.GetDirectoryName(PowerShellHost.ModuleManifest)!;
        Assert.Contains("VmTools.CloudInit.format.ps1xml", _ps.Invoke("(Get-Module VmTools).ExportedFormatFiles").Select(f => Path.GetFileName(f.ToString())));
        var doc = System.Xml.Linq.XDocument.Load(Path.Combine(moduleDir, "VmTools.CloudInit.format.ps1xml"));
        foreach (var view in doc.Descendants("View"))
        {
            var typeName = view.Element("ViewSelectedBy")!.Element("TypeName")!.Value;
            var properties = _ps.Invoke("param($t) ([type]$t).GetProperties().Name", typeName).Select(p => p.ToString()).ToHashSet();
            Assert.NotEmpty(properties);
            foreach (var name in view.Descendants("PropertyName").Select(p => p.Value)) Assert.Contains(name, properties);
        }
    }
}
