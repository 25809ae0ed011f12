namespace VmTools.Core.KubeVirt;

/// <summary>KubeVirt's <c>spec.runStrategy</c>: whether the controller keeps the VM running.</summary>
public enum KubeVirtRunStrategy
{
    Always,
    Halted,
    Manual,
    RerunOnFailure,
    Once,
}
