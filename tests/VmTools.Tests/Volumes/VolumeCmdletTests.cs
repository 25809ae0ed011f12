using System.Management.Automation;
using VmTools.TestSupport;

namespace VmTools.Tests.Volumes;

/// <summary>The VmVolume cmdlets in a real PowerShell engine, on a real zfs-fuse pool per test.</summary>
[Collection(ZfsCollection.Name)]
public sealed class VolumeCmdletTests : IDisposable
{
    private readonly TempDirectory _home = new("vmtools-volps");
    private readonly string _pool = ZfsFuseDaemon.NewPoolName();
    private readonly PowerShellHost _ps;

    public VolumeCmdletTests(ZfsFuseDaemon daemon)
    {
        daemon.Require();
        _ps = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = _home.Path });
    }

    private string Vdev => _home.Combine("vdev", _pool + ".vdev");

    [Fact]
    public void Pipeline_NewVolume_Snapshot_SendToFile_Receive_CarriesTheFiles()
    {
        InitializePool();
        var received = _ps.Invoke("""
            $src = New-VmVolume -Name src -Metadata @{ job = 'build' }
            [IO.File]::WriteAllText(([IO.Path]::Combine($src.Mountpoint, 'alpha')), 'data')
            $dst = New-VmVolume -Name dst
            $src | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -Path ([IO.Path]::Combine($args[0], 's.zstream')) | Receive-VmVolumeSnapshot -VolumeId dst
            """, _home.Path).Single();
        Assert.True((bool)received.Properties["IsSnapshot"].Value);
        var dst = _ps.Invoke("Get-VmVolume dst").Single();
        Assert.Equal(dst.Properties["Id"].Value, received.Properties["ParentVolumeId"].Value);
        Assert.Equal("data", File.ReadAllText(Path.Combine((string)dst.Properties["Mountpoint"].Value, "alpha")));
        Assert.Equal("data", File.ReadAllText(Path.Combine((string)received.Properties["Mountpoint"].Value, "alpha")));
        var src = _ps.Invoke("Get-VmVolume src").Single();
        Assert.Equal("build", ((IReadOnlyDictionary<string, string>)src.Properties["Metadata"].Value)["job"]);
    }

    [Fact]
    public void SendToVolume_SecondTimeIsIncremental_AndReportsProgress()
    {
        InitializePool();
        var r = _ps.Run("""
            $src = New-VmVolume
            $dst = New-VmVolume
            [IO.File]::WriteAllText(([IO.Path]::Combine($src.Mountpoint, 'alpha')), 'a')
            $src | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -TargetVolumeId $dst.Id | Out-Null
            [IO.File]::WriteAllText(([IO.Path]::Combine($src.Mountpoint, 'beta')), 'b')
            $snap = $src | New-VmVolumeSnapshot
            $result = $snap | Send-VmVolumeSnapshot -Path ([IO.Path]::Combine($args[0], 'delta.zstream')) -Have (Get-VmVolumeHave -VolumeId $dst.Id)
            $result.Incremental
            ($snap | Send-VmVolumeSnapshot -TargetVolumeId $dst.Id).Mountpoint
            @(Get-VmVolumeHave -VolumeId $dst.Id).Count
            """, _home.Path);
        Assert.Empty(r.Errors);
        Assert.True((bool)r.Output[0].BaseObject);
        Assert.Equal("b", File.ReadAllText(Path.Combine((string)r.Output[1].BaseObject, "beta")));
        Assert.Equal(2, (int)r.Output[2].BaseObject);
        Assert.NotEmpty(r.Progress);
    }

    [Fact]
    public void Remove_WithSnapshots_NeedsRecurse_AndWhatIfDestroysNothing()
    {
        InitializePool();
        _ps.Invoke("$v = New-VmVolume -Name keep; $v | New-VmVolumeSnapshot | Out-Null");
        var e = _ps.ExpectError("Remove-VmVolume -Id keep");
        Assert.Equal("VolumeHasSnapshots,VmTools.Commands.RemoveVmVolumeCommand", e.FullyQualifiedErrorId);
        _ps.Invoke("Remove-VmVolume -Id keep -Recurse -WhatIf");
        Assert.Equal(2, _ps.Invoke("Get-VmVolume").Count);
        var removed = _ps.Invoke("Remove-VmVolume -Id keep -Recurse -PassThru");
        Assert.Equal(2, removed.Count);
        Assert.Empty(_ps.Invoke("Get-VmVolume"));
    }

    [Fact]
    public void UnknownVolume_IsVolumeNotFound()
    {
        InitializePool();
        Assert.Equal("VolumeNotFound,VmTools.Commands.GetVmVolumeCommand", _ps.ExpectError("Get-VmVolume -Id nope").FullyQualifiedErrorId);
        var e = _ps.ExpectError("New-VmVolumeSnapshot -VolumeId 00000000-0000-0000-0000-000000000000");
        Assert.Equal("VolumeNotFound,VmTools.Commands.NewVmVolumeSnapshotCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
    }

    [Fact]
    public void Send_OfAVolume_IsVolumeNotASnapshot_AndWritesNoFile()
    {
        InitializePool();
        var file = _home.Combine("never.zstream");
        var e = _ps.ExpectError("New-VmVolume | Send-VmVolumeSnapshot -Path $args[0]", file);
        Assert.Equal("VolumeNotASnapshot,VmTools.Commands.SendVmVolumeSnapshotCommand", e.FullyQualifiedErrorId);
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void SetVmVolume_MergesMetadata_NullRemovesAKey_ReplaceDropsTheRest_AndItSurvivesANewSession()
    {
        InitializePool();
        _ps.Invoke("$null = New-VmVolume -Name labelled -Metadata @{ branch = 'main'; stale = 'yes' }");
        Assert.Empty(_ps.Invoke("Set-VmVolume labelled -Metadata @{ branch = 'x' } -WhatIf -PassThru"));
        var merged = _ps.Invoke("(Set-VmVolume label* -Metadata @{ owner = 'ci'; stale = $null } -PassThru).Metadata").Single().BaseObject as IReadOnlyDictionary<string, string>;
        Assert.Equal(new Dictionary<string, string> { ["branch"] = "main", ["owner"] = "ci" }, merged);
        _ps.Invoke("Get-VmVolume labelled | Set-VmVolume -Metadata @{ only = '1' } -Replace");
        using var fresh = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = _home.Path });
        var stored = fresh.Invoke("(Get-VmVolume labelled).Metadata").Single().BaseObject as IReadOnlyDictionary<string, string>;
        Assert.Equal(new Dictionary<string, string> { ["only"] = "1" }, stored);
        Assert.Equal("VolumeNotFound,VmTools.Commands.SetVmVolumeCommand", _ps.ExpectError("Set-VmVolume nosuch -Metadata @{ a = 1 }").FullyQualifiedErrorId);
    }

    [Fact]
    public void Receive_FullStreamIntoAVolumeWithSnapshots_IsRefused()
    {
        InitializePool();
        var e = _ps.ExpectError("""
            $file = [IO.Path]::Combine($args[0], 'full.zstream')
            New-VmVolume | New-VmVolumeSnapshot | Send-VmVolumeSnapshot -Path $file | Out-Null
            $t = New-VmVolume -Name target
            $t | New-VmVolumeSnapshot | Out-Null
            Get-VmVolume target | Receive-VmVolumeSnapshot -Path $file
            """, _home.Path);
        Assert.Equal("VolumeReceiveFullStreamIntoSnapshots,VmTools.Commands.ReceiveVmVolumeSnapshotCommand", e.FullyQualifiedErrorId); // VolumeId bound from the Volume's Id
        Assert.Single(_ps.Invoke("Get-VmVolume target | Get-VmVolumeSnapshot"));

        // Wildcards match names as well as ids; a pattern matching nothing is silent, a literal is VolumeNotFound.
        Assert.Equal("target", _ps.Invoke("(Get-VmVolume TAR* -ExcludeSnapshots).Name").Single().ToString());
        Assert.Empty(_ps.Invoke("Get-VmVolume nomatch*; Remove-VmVolume nomatch*"));
        Assert.Equal("VolumeNotFound,VmTools.Commands.RemoveVmVolumeCommand", _ps.ExpectError("Remove-VmVolume nosuch").FullyQualifiedErrorId);
        Assert.Equal(2, _ps.Invoke("Remove-VmVolume tar* -Recurse -PassThru -Confirm:$false").Count);
    }

    [Fact]
    public void InitializePool_OnAFileThatIsNotAPool_FailsAndLeavesTheFile()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Vdev)!);
        File.WriteAllText(Vdev, "not a pool");
        var e = _ps.ExpectError("Initialize-VmVolumePool -PoolName $args[0] -VdevPath $args[1]", _pool, Vdev);
        Assert.Equal("VolumeVdevNotAPool,VmTools.Commands.InitializeVmVolumePoolCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, e.CategoryInfo.Category);
        Assert.Equal("not a pool", File.ReadAllText(Vdev));
        Assert.Empty(_ps.Invoke("Get-VmVolumePool"));
    }

    [Fact]
    public void NewVolume_WithoutAPool_IsVolumePoolNotInitialized()
    {
        var e = _ps.ExpectError("New-VmVolume");
        Assert.Equal("VolumePoolNotInitialized,VmTools.Commands.NewVmVolumeCommand", e.FullyQualifiedErrorId);
    }

    [Fact]
    public void NewVolume_WithDiskSize_ExposesDiskImagePath()
    {
        InitializePool();
        var v = _ps.Invoke("New-VmVolume -DiskSizeGB 2 -DiskFormat Raw").Single();
        var path = (string)v.Properties["DiskImagePath"].Value;
        Assert.Equal("disk", v.Properties["Type"].Value);
        Assert.Equal(2L << 30, new FileInfo(path).Length);
        var q = _ps.Invoke("New-VmVolume | New-VmVolumeDisk -SizeGB 1 -Format Qcow2").Single();
        Assert.EndsWith("disk.qcow2", (string)q.Properties["DiskImagePath"].Value, StringComparison.Ordinal);
    }

    [Fact]
    public void AfterARestart_GetVmVolume_ReturnsTheSameVolumes()
    {
        InitializePool();
        var before = _ps.Invoke("$v = New-VmVolume -Name kept; [IO.File]::WriteAllText(([IO.Path]::Combine($v.Mountpoint, 'alpha')), 'x'); $v").Single();
        Programs.MustRun("zpool", "export", "-f", _pool);
        using var fresh = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = _home.Path });
        var after = fresh.Invoke("Get-VmVolume kept").Single();
        Assert.Equal(before.Properties["Id"].Value, after.Properties["Id"].Value);
        Assert.Equal(before.Properties["CreatedAt"].Value, after.Properties["CreatedAt"].Value);
        Assert.Equal("x", File.ReadAllText(Path.Combine((string)after.Properties["Mountpoint"].Value, "alpha")));
        Assert.Equal("Online", fresh.Invoke("(Get-VmVolumePool).State").Single().ToString());
    }

    [Fact]
    public void Restore_ToAnOlderSnapshot_NeedsDestroyNewer_WhatIfNamesAndKeepsS2_ThenTheVolumeHoldsAOnly()
    {
        InitializePool();
        var ids = _ps.Invoke("""
            $v = New-VmVolume -Name work
            [IO.File]::WriteAllText(([IO.Path]::Combine($v.Mountpoint, 'A')), 'a')
            ($v | New-VmVolumeSnapshot).Id
            [IO.File]::WriteAllText(([IO.Path]::Combine($v.Mountpoint, 'B')), 'b')
            ($v | New-VmVolumeSnapshot).Id
            $v.Mountpoint
            $v.Dataset
            """).Select(o => o.ToString()!).ToArray();
        var (s1, s2, mount, dataset) = (ids[0], ids[1], ids[2], ids[3]);
        string[] ZfsSnapshots() => Programs.MustRun("zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        var e = _ps.ExpectError("Restore-VmVolumeSnapshot -VolumeId work -Snapshot $args[0]", s1);
        Assert.Equal("VolumeSnapshotNotLatest,VmTools.Commands.RestoreVmVolumeSnapshotCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidOperation, e.CategoryInfo.Category);
        Assert.True(File.Exists(Path.Combine(mount, "B")));
        Assert.Equal(2, ZfsSnapshots().Length);

        _ps.Invoke("Get-VmVolumeSnapshot work | Select-Object -First 1 | Restore-VmVolumeSnapshot -DestroyNewer -WhatIf");
        Assert.True(File.Exists(Path.Combine(mount, "B")));
        Assert.Equal(2, ZfsSnapshots().Length);

        var r = _ps.Run("Get-VmVolumeSnapshot work | Select-Object -First 1 | Restore-VmVolumeSnapshot -DestroyNewer -PassThru -Verbose");
        Assert.Empty(r.Errors);
        Assert.Contains(r.Verbose, v => v.Contains($"Roll back to snapshot '{s1}'", StringComparison.Ordinal) && v.Contains($"destroying 1 newer snapshot(s): {s2}", StringComparison.Ordinal));
        Assert.Equal("work", r.Output.Single().Properties["Name"].Value);
        Assert.Equal("a", File.ReadAllText(Path.Combine(mount, "A")));
        Assert.False(File.Exists(Path.Combine(mount, "B")));
        Assert.Equal(new[] { dataset + "@" + s1 }, ZfsSnapshots());
        Assert.Equal(new[] { s1 }, _ps.Invoke("(Get-VmVolumeSnapshot work).Id").Select(o => o.ToString()));
    }

    [Fact]
    public void Restore_UnknownSnapshot_IsVolumeSnapshotNotFound_AndAVolumePipedWithoutSnapshot_IsVolumeSnapshotUnspecified()
    {
        InitializePool();
        _ps.Invoke("New-VmVolume -Name solo | New-VmVolumeSnapshot | Out-Null");
        var e = _ps.ExpectError("Restore-VmVolumeSnapshot -Name 'sol*' -Snapshot nope");
        Assert.Equal("VolumeSnapshotNotFound,VmTools.Commands.RestoreVmVolumeSnapshotCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        var unspecified = _ps.ExpectError("Get-VmVolume solo | Restore-VmVolumeSnapshot");
        Assert.Equal("VolumeSnapshotUnspecified,VmTools.Commands.RestoreVmVolumeSnapshotCommand", unspecified.FullyQualifiedErrorId);
        var twice = _ps.ExpectError("Get-VmVolumeSnapshot solo | Restore-VmVolumeSnapshot -Snapshot x");
        Assert.Equal("VolumeSnapshotGivenTwice,VmTools.Commands.RestoreVmVolumeSnapshotCommand", twice.FullyQualifiedErrorId);
    }

    private void InitializePool()
        => _ps.Invoke("Initialize-VmVolumePool -PoolName $args[0] -VdevPath $args[1] -Size 512MB -WorkingDirectory $args[2] | Out-Null",
            _pool, Vdev, _home.Combine("zfs"));

    public void Dispose()
    {
        _ps.Dispose();
        ZfsFuseDaemon.DestroyPool(_pool);
        _home.Dispose();
    }
}
