using VmTools.HelpBuilder;

// Usage: VmTools.HelpBuilder <module.dll> <fragment dir> <output help xml> [reference.dll ...]
// The references are the compile-time assemblies the module needs besides its own folder and the
// runtime (System.Management.Automation from PowerShellStandard.Library).
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: VmTools.HelpBuilder <module.dll> <fragment dir> <output.xml> [reference.dll ...]");
    return 2;
}

var (modulePath, fragmentDirectory, outputPath) = (Path.GetFullPath(args[0]), Path.GetFullPath(args[1]), Path.GetFullPath(args[2]));
try
{
    var cmdlets = CmdletReader.Read(modulePath, args.Skip(3));
    var fragments = Directory.GetFiles(fragmentDirectory, "*.xml").Order(StringComparer.Ordinal).Select(HelpFragment.Load).ToList();
    var (help, defects) = HelpCompiler.Compile(cmdlets, fragments);
    if (help is null)
    {
        foreach (var defect in defects)
            Console.Error.WriteLine(defect.ToMsBuildError());
        return 1;
    }

    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outputPath))!);
    var temp = outputPath + ".tmp";
    help.Save(temp);
    File.Move(temp, outputPath, overwrite: true);
    Console.WriteLine($"VmTools.HelpBuilder: {cmdlets.Count} cmdlets -> {outputPath}");
    return 0;
}
catch (HelpBuildException e)
{
    Console.Error.WriteLine(e.ToMsBuildError());
    return 1;
}
