using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Host;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Runs a shell command in a VM over SSH and returns its exit code and output.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "FlightVmCommand")]
[OutputType(typeof(VmCommandResult))]
public sealed class InvokeFlightVmCommandCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Command { get; set; } = null!;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string User { get; set; } = "root";

    /// <summary>The private key to log in with; default: ssh's own (agent, ~/.ssh/id_*).</summary>
    [Parameter]
    public string? KeyPath { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var store = new VmStore(db, Paths);
        Guard(() => VmSsh.ValidateUser(User));
        var key = KeyPath is null ? null : ResolvePath(KeyPath);
        if (key is not null && !File.Exists(key)) ThrowArgumentError("VmSshKeyNotFound", $"The key file '{key}' does not exist.", key);
        foreach (var name in ExpandVmNames(Name, store))
        {
            var result = TryRunCore(ctx => VmSsh.RunAsync(ProcessRunner.Instance, store.Get(name), Command, User, key, ctx.Cancellation));
            if (result is not null) WriteObject(result);
        }
    }
}
