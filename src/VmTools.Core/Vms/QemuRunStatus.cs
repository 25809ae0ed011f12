namespace VmTools.Core.Vms;

/// <summary>
/// qemu's own word (QMP query-status) on whether the guest's CPUs run, and the record it calls for.
/// Only "running" runs guest code; every other status leaves qemu alive with halted CPUs and is
/// recorded as <see cref="VmState.Paused"/>. Besides a deliberate "paused", they are qemu stopping by
/// itself or a guest in a state no VmTools verb put it in ("io-error" with werror=stop,
/// "internal-error", "guest-panicked", "suspended" in ACPI S3, "prelaunch", "shutdown" on its way out,
/// migration states): the record still says Paused, and <see cref="Unusual"/> asks for a warning
/// naming the status, since Resume-FlightVm alone may not bring such a guest back.
/// </summary>
public sealed record QemuRunStatus(string Status)
{
    public VmState State => Status == "running" ? VmState.Running : VmState.Paused;

    public bool Unusual => Status is not ("running" or "paused");

    /// <summary>Asks qemu; a socket that does not answer within <paramref name="timeout"/> is VmQmpFailed, as any QMP failure.</summary>
    public static async Task<QemuRunStatus> QueryAsync(string socketPath, TimeSpan timeout, CancellationToken ct)
    {
        var answer = await QmpClient.ExecuteAsync(socketPath, "query-status", timeout, ct).ConfigureAwait(false);
        if (answer.ValueKind == System.Text.Json.JsonValueKind.Object && answer.TryGetProperty("status", out var status) && status.ValueKind == System.Text.Json.JsonValueKind.String
            && status.GetString() is { Length: > 0 } s)
        {
            return new QemuRunStatus(s);
        }

        throw new VmToolsException("VmQmpFailed", FailureKind.InvalidData, $"QMP 'query-status' on {socketPath} answered without a status: {answer.GetRawText()}") { Target = socketPath };
    }
}
