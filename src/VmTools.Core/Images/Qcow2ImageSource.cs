using VmTools.Core.Engine;

namespace VmTools.Core.Images;

/// <summary>Where a base image's root filesystem comes from.</summary>
public abstract record Qcow2ImageSource
{
    private Qcow2ImageSource() { }

    /// <summary>Built by the engine from a Containerfile and its context.</summary>
    public sealed record Containerfile(EngineBuild Build) : Qcow2ImageSource
    {
        public override string ToString() => "Containerfile " + Build.Containerfile;
    }

    /// <summary>An image the engine has or can pull.</summary>
    public sealed record Image(string Reference, bool AlwaysPull) : Qcow2ImageSource
    {
        public override string ToString() => "Image " + Reference;
    }

    /// <summary>A root filesystem tarball (plain, gzip or zstd). It is the filesystem already, so no engine is involved.</summary>
    public sealed record RootfsArchive(string Path) : Qcow2ImageSource
    {
        public override string ToString() => "Rootfs " + Path;
    }
}
