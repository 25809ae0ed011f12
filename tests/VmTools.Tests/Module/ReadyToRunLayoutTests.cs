using System.Reflection.PortableExecutable;

namespace VmTools.Tests.Module;

/// <summary>
/// The build lays out the module's assemblies ReadyToRun-compiled for linux-x64, so a one-cmdlet CI
/// step does not pay the JIT for them (bench/FirstCall measures what that saves).
/// </summary>
public sealed class ReadyToRunLayoutTests
{
    // A ReadyToRun image for Linux marks its machine as the architecture XOR the OS (crossgen2's
    // "IMAGE_FILE_MACHINE_OS_LINUX" = 0x7B79); plain IL says I386 or AMD64.
    private const ushort LinuxX64ReadyToRunMachine = 0x8664 ^ 0x7B79;

    public static TheoryData<string> ModuleAssemblies() => new(
        "VmTools.dll", "VmTools.Core.dll", "Microsoft.Data.Sqlite.dll", "SQLitePCLRaw.core.dll", "YamlDotNet.dll");

    [Theory]
    [MemberData(nameof(ModuleAssemblies))]
    public void LaidOutAssembly_IsReadyToRunForLinuxX64(string fileName)
    {
        var path = Path.Combine(Path.GetDirectoryName(PowerShellHost.ModuleManifest)!, fileName);
        using var pe = new PEReader(File.OpenRead(path));
        var corHeader = pe.PEHeaders.CorHeader;
        Assert.NotNull(corHeader);
        Assert.True(corHeader.ManagedNativeHeaderDirectory.Size > 0, $"{fileName} has no ReadyToRun header: it was laid out as plain IL");
        Assert.Equal(LinuxX64ReadyToRunMachine, (ushort)pe.PEHeaders.CoffHeader.Machine);
    }
}
