using VmTools.Core.State;
using VmTools.TestSupport;

namespace VmTools.Core.Tests.State;

public sealed class StateDbTests
{
    [Fact]
    public void Open_NewFile_AppliesEveryMigrationOnceAndUsesWal()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("state.db");
        IReadOnlyList<int> first;
        using (var db = StateDb.Open(path)) first = db.AppliedVersions();
        using (var db = StateDb.Open(path))
        {
            Assert.Equal(first, db.AppliedVersions());
            using var cmd = db.Command("PRAGMA journal_mode");
            Assert.Equal("wal", (string)cmd.ExecuteScalar()!);
        }

        Assert.Contains(1, first);
    }

    [Fact]
    public void Open_PathUnderAFile_FailsWithoutCreatingAnything()
    {
        using var dir = new TempDirectory();
        var notADirectory = dir.Combine("file");
        File.WriteAllText(notADirectory, "x");
        Assert.ThrowsAny<IOException>(() => StateDb.Open(Path.Combine(notADirectory, "state.db")));
        Assert.Equal("x", File.ReadAllText(notADirectory));
    }

    [Fact]
    public void Paths_VmToolsHome_PutsEverythingUnderIt()
    {
        var p = VmToolsPaths.FromEnvironment(n => n == "VMTOOLS_HOME" ? "/srv/vmt" : null);
        Assert.Equal("/srv/vmt/state/vmtools.db", p.DatabasePath);
        Assert.StartsWith("/srv/vmt/cache", p.ImageStoreDirectory);
    }

    [Fact]
    public void Paths_Xdg_SplitsStateFromCache()
    {
        var env = new Dictionary<string, string> { ["HOME"] = "/home/u", ["XDG_CACHE_HOME"] = "/c" };
        var p = VmToolsPaths.FromEnvironment(n => env.GetValueOrDefault(n));
        Assert.Equal("/home/u/.local/state/vmtools/vmtools.db", p.DatabasePath);
        Assert.Equal("/c/vmtools/images", p.ImageStoreDirectory);
    }
}
