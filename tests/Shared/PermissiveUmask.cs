using System.Runtime.InteropServices;

namespace VmTools.TestSupport;

/// <summary>
/// umask(000) for the life of the object, restored on dispose: under it a file gets exactly the mode its
/// creator asked for, so a test of "private" files proves the code asked for 0600/0700 rather than relying
/// on the usual 022. The umask is per process: tests using it run in <see cref="PermissiveUmaskCollection"/>,
/// which xunit runs alone.
/// </summary>
public sealed class PermissiveUmask : IDisposable
{
    private readonly uint _previous;

    public PermissiveUmask() => _previous = umask(0);

    public void Dispose() => umask(_previous);

    public static UnixFileMode ModeOf(string path) => File.GetUnixFileMode(path) & (UnixFileMode)0x1FF;

    [DllImport("libc", SetLastError = false)]
    private static extern uint umask(uint mask);
}

/// <summary>Tests that change the process umask; run with nothing else in parallel.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PermissiveUmaskCollection
{
    public const string Name = "PermissiveUmask";
}
