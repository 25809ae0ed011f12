using System.Management.Automation;
using VmTools.Core;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>
/// Brings VM records in line with the OS: keeps live VMs (Running or Paused as qemu says; warnings when
/// qemu halted the guest itself or its QMP socket did not answer), tears down dead ones and marks them stopped,
/// reports corrupt scratch files and orphaned taps/loops. -WhatIf shows the plan.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "VmReconcile", SupportsShouldProcess = true)]
[OutputType(typeof(VmReconcileAction))]
public sealed class InvokeVmReconcileCommand : VmToolsCmdlet
{
    /// <summary>Also delete orphaned taps and loop devices (they are reported either way).</summary>
    [Parameter]
    public SwitchParameter RemoveOrphans { get; set; }

    protected override void EndProcessing()
    {
        using var db = OpenState();
        var apply = ShouldProcess(Paths.StateDirectory, RemoveOrphans ? "Reconcile VMs and remove orphaned taps and loops" : "Reconcile VMs");
        var actions = RunCore(ctx => new Reconciler(db, Paths).RunAsync(apply, RemoveOrphans, ctx.Cancellation));
        foreach (var a in actions)
        {
            WriteObject(a);
            if (a.Warning is not null) WriteWarning($"{a.Name}: {a.Warning}");
            if (a.Error is not null)
            {
                var kind = a.ErrorId == "VmHandlesCorrupt" ? FailureKind.InvalidData : FailureKind.InvalidOperation;
                WriteError(ToErrorRecord(new VmToolsException(a.ErrorId ?? "VmReconcileFailed", kind, a.Error) { Target = a.Name }));
            }
        }
    }
}
