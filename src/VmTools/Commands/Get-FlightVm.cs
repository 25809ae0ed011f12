using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Lists the durable VM records (what each VM is); Get-VmHandles shows what is running.</summary>
[Cmdlet(VerbsCommon.Get, "FlightVm")]
[OutputType(typeof(FlightVm))]
public sealed class GetFlightVmCommand : VmToolsCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    [Parameter]
    public VmState? State { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var all = new VmStore(db, Paths).List();
        foreach (var name in Name ?? new[] { "*" })
        {
            var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
            var matches = all.Where(v => pattern.IsMatch(v.Name) && (State is null || v.State == State)).ToList();
            if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
            {
                WriteError(ToErrorRecord(new Core.VmToolsException("VmNotFound", Core.FailureKind.NotFound, $"No VM named '{name}'.") { Target = name }));
            }

            WriteObject(matches, enumerateCollection: true);
        }
    }
}
