using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Prints a VM's serial console, or follows it (-Wait) until Ctrl+C, -Until matches, -Timeout or qemu's exit.</summary>
[Cmdlet(VerbsCommon.Get, "FlightVmConsole")]
[OutputType(typeof(string))]
public sealed class GetFlightVmConsoleCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int Tail { get; set; } = -1;

    [Parameter]
    public SwitchParameter Wait { get; set; }

    /// <summary>A regex; output stops after the first line it matches. Implies -Wait.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Until { get; set; }

    /// <summary>Seconds to follow at most. Implies -Wait.</summary>
    [Parameter]
    [ValidateRange(1, 86_400)]
    public int Timeout { get; set; }

    protected override void ProcessRecord()
    {
        using var db = OpenState();
        var store = new VmStore(db, Paths);
        var request = new ConsoleReadRequest
        {
            Tail = Tail >= 0 ? Tail : null,
            Follow = Wait || Until is not null || Timeout > 0,
            Until = Until,
            Timeout = Timeout > 0 ? TimeSpan.FromSeconds(Timeout) : null,
        };
        Guard(() => ConsoleFollower.ParseUntil(Until));
        foreach (var name in ExpandVmNames(Name, store))
        {
            TryRunCore(async ctx => (object)await ConsoleFollower.ReadAsync(store.Get(name), request, ctx.Output, ctx.Cancellation).ConfigureAwait(false));
        }
    }
}
