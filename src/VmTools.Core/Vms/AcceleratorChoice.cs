namespace VmTools.Core.Vms;

/// <summary>The accelerator a VM runs with (<see cref="VmAccelerator.Kvm"/> or <see cref="VmAccelerator.Tcg"/>) and why, for -Verbose.</summary>
public sealed record AcceleratorChoice(VmAccelerator Accelerator, string Reason);
