using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core;
using VmTools.Core.Host;
using VmTools.Core.Vms;

namespace VmTools.Commands;

/// <summary>Copies a file or folder from this host into a VM, or with -FromGuest out of it, over scp (SFTP).</summary>
[Cmdlet(VerbsCommon.Copy, "FlightVmItem", SupportsShouldProcess = true)]
[OutputType(typeof(VmItemCopy))]
public sealed class CopyFlightVmItemCommand : VmToolsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(FlightVmNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    /// <summary>The source: a host path, or with -FromGuest a path in the guest.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>The target: a path in the guest, or with -FromGuest a host path.</summary>
    [Parameter(Mandatory = true, Position = 2)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    [Parameter]
    public SwitchParameter FromGuest { get; set; }

    [Parameter]
    public SwitchParameter Recurse { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string User { get; set; } = "root";

    [Parameter]
    public string? KeyPath { get; set; }

    /// <summary>Seconds the copy may take; then scp is killed (VmCopyTimeout). A copy from the guest leaves the host target as it was.</summary>
    [Parameter]
    [ValidateRange(1, 86_400)]
    public int Timeout { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        Guard(() => VmSsh.ValidateUser(User));
        Guard(() => VmFileCopy.ValidatePath(Path, FromGuest ? "guest path" : "path"));
        Guard(() => VmFileCopy.ValidatePath(Destination, FromGuest ? "destination" : "guest path"));
        var key = KeyPath is null ? null : ResolvePath(KeyPath);
        if (key is not null && !File.Exists(key)) ThrowArgumentError("VmSshKeyNotFound", $"The key file '{key}' does not exist.", key);
        var (path, destination) = FromGuest ? (Path, ResolvePath(Destination)) : (ResolvePath(Path), Destination);

        using var db = OpenState();
        var store = new VmStore(db, Paths);
        var names = ExpandVmNames(Name, store).ToList();
        // Several guests copying out to one host path would overwrite each other.
        if (FromGuest && names.Count > 1)
        {
            ThrowArgumentError("VmCopyFromGuestNeedsOneVm", $"-FromGuest copies to one host path; '{string.Join("', '", Name)}' names {names.Count} VMs.", Name);
        }

        TimeSpan? timeout = Timeout > 0 ? TimeSpan.FromSeconds(Timeout) : null;
        foreach (var name in names)
        {
            var action = FromGuest ? $"Copy '{path}' from the guest to '{destination}'" : $"Copy '{path}' to '{destination}' in the guest";
            if (!ShouldProcess(name, action)) continue;
            var copied = TryRunCore(ctx => VmFileCopy.CopyAsync(ProcessRunner.Instance, store.Get(name), path, destination, FromGuest, Recurse, User, key, timeout, ctx, ctx.Cancellation));
            if (copied is not null && PassThru) WriteObject(copied);
        }
    }
}
