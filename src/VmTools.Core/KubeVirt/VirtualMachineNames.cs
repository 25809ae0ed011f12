namespace VmTools.Core.KubeVirt;

/// <summary>
/// The VirtualMachines one conversion has written. Two with one namespace and name would replace each other
/// when applied, so the second is refused: each seed needs its own hostname, or its own -Name.
/// </summary>
public sealed class VirtualMachineNames
{
    private readonly HashSet<string> _claimed = new(StringComparer.Ordinal);

    public void Claim(VirtualMachineManifest vm)
    {
        if (!_claimed.Add(vm.Namespace + "/" + vm.Name))
        {
            throw new VmToolsException("KubeVirtNameDuplicate", FailureKind.InvalidArgument,
                $"A VirtualMachine named '{vm.Name}' in '{vm.Namespace}' was already written; give each seed its own hostname, or convert one at a time with -Name.") { Target = vm.Name };
        }
    }
}
