using System.Management.Automation;
using VmTools.Core.Images;

namespace VmTools.Commands;

/// <summary>Reports hit/miss counts and bytes moved, summed from the state store's event log.</summary>
[Cmdlet(VerbsCommon.Get, "Qcow2CacheStatistics")]
[OutputType(typeof(CacheStatistics))]
public sealed class GetQcow2CacheStatisticsCommand : VmToolsCmdlet
{
    /// <summary>Only events at or after this time.</summary>
    [Parameter]
    public DateTime? Since { get; set; }

    protected override void EndProcessing()
    {
        using var db = OpenState();
        WriteObject(new CacheEventLog(db).Summarize(Since is { } s ? new DateTimeOffset(s.ToUniversalTime()) : null));
    }
}
