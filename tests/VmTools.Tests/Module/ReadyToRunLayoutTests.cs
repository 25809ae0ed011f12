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
        // A runtime uses only the ReadyToRun format versions it reads and JITs the rest silently: the
        // images must have the major version of the runtime pwsh runs on (this test's, whose CoreLib is R2R).
        using var coreLib = new PEReader(File.OpenRead(typeof(object).Assembly.Location));
        Assert.Equal(ReadyToRunMajorVersion(coreLib), ReadyToRunMajorVersion(pe));
    }

    /// <summary>READYTORUN_HEADER: uint Signature ("RTR"), ushort MajorVersion, ushort MinorVersion, ...</summary>
    private static ushort ReadyToRunMajorVersion(PEReader pe)
    {
        var directory = pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory;
        var header = pe.GetSectionData(directory.RelativeVirtualAddress).GetReader(0, directory.Size);
        Assert.Equal(0x00525452u, header.ReadUInt32());
        return header.ReadUInt16();
    }
}
