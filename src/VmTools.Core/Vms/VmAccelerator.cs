namespace VmTools.Core.Vms;

/// <summary>
/// How qemu runs a guest. <see cref="Auto"/> is only ever asked for: <see cref="AcceleratorProbe"/>
/// turns it into <see cref="Kvm"/> or <see cref="Tcg"/>, and a VM's record holds what it ran with.
/// </summary>
public enum VmAccelerator
{
    Auto,

    /// <summary>Hardware virtualization through /dev/kvm; qemu gets <c>-accel kvm -cpu host</c>.</summary>
    Kvm,

    /// <summary>qemu's software emulator; slower, but runs anywhere. qemu gets <c>-accel tcg -cpu max</c>.</summary>
    Tcg,
}
