namespace VmTools.Core.Volumes;

/// <summary>
/// Whether a recorded volume's dataset was found when the store opened. A volume whose dataset
/// vanished (destroyed behind VmTools' back, pool gone) stays recorded as Missing rather than
/// being dropped silently; Remove-VmVolume clears it.
/// </summary>
public enum VolumeState
{
    Available,
    Missing,
}
