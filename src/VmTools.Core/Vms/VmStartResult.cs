namespace VmTools.Core.Vms;

/// <summary>One VM of a start request: the record as it ended up, and the failure if it did not start.</summary>
public sealed record VmStartResult(FlightVm Vm, VmToolsException? Error);
