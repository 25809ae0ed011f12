using System.Management.Automation;
using System.Management.Automation.Runspaces;

// Usage: VmTools.ScriptHost <script> [args...]. Output objects are printed as they arrive; errors go
// to stderr; the exit code is 1 when the script had errors.
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: VmTools.ScriptHost <script> [args...]");
    return 2;
}

using var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
runspace.Open();
using var ps = PowerShell.Create();
ps.Runspace = runspace;
ps.AddScript(args[0]);
foreach (var a in args.Skip(1)) ps.AddArgument(a);
var output = new PSDataCollection<PSObject>();
output.DataAdded += (_, e) => { Console.Out.WriteLine(output[e.Index]?.ToString()); Console.Out.Flush(); };
try
{
    ps.Invoke(null, output);
}
catch (RuntimeException e)
{
    Console.Error.WriteLine($"{e.ErrorRecord?.FullyQualifiedErrorId}: {e.Message}");
    return 1;
}

foreach (var error in ps.Streams.Error) Console.Error.WriteLine($"{error.FullyQualifiedErrorId}: {error}");
return ps.HadErrors ? 1 : 0;
