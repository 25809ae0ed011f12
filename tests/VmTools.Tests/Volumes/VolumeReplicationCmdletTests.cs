using VmTools.TestSupport;

namespace VmTools.Tests.Volumes;

/// <summary>Send-VmVolumeSnapshot -Destination and Sync-VmVolume in a real PowerShell engine, to a namespace "host" running sshd (<see cref="SshTestHost"/>).</summary>
[Collection(ZfsCollection.Name)]
public sealed class VolumeReplicationCmdletTests : IDisposable, IClassFixture<SshTestHost>
{
    private readonly TempDirectory _home = new("vmtools-replps");
    private readonly string _pool = ZfsFuseDaemon.NewPoolName();
    private readonly string _replicaPool = ZfsFuseDaemon.NewPoolName();
    private readonly SshTestHost _host;
    private readonly PowerShellHost _ps;

    public VolumeReplicationCmdletTests(ZfsFuseDaemon daemon, SshTestHost host)
    {
        daemon.Require();
        _host = host;
        _ps = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = _home.Path });
    }

    [Fact]
    public void Sync_Twice_SendsFullThenTheDelta_AndKeepLastPrunesBothSides()
    {
        _host.Require();
        InitializePools();
        var r = _ps.Run("""
            $v = New-VmVolume -Name data
            [IO.File]::WriteAllBytes([IO.Path]::Combine($v.Mountpoint, 'alpha'), [byte[]]::new(4MB))
            $first = $v | Sync-VmVolume -Destination $args[0] -IdentityFile $args[1] -KnownHostsFile $args[2] -KeepLast 1
            [IO.File]::WriteAllText([IO.Path]::Combine($v.Mountpoint, 'beta'), 'b')
            $second = Sync-VmVolume -VolumeId data -Destination $args[0] -IdentityFile $args[1] -KnownHostsFile $args[2] -KeepLast 1
            $first.Incremental, $second.Incremental, $second.FromSnapshot, $first.SnapshotName, @($second.PrunedRemote).Count, @(Get-VmVolumeSnapshot -VolumeId data).Count, $second.SnapshotName
            """, _host.Destination(_replicaPool + "/data"), _host.IdentityFile, _host.KnownHostsFile);
        Assert.Empty(r.Errors);
        Assert.False((bool)r.Output[0].BaseObject);
        Assert.True((bool)r.Output[1].BaseObject);
        Assert.Equal(r.Output[3].BaseObject, r.Output[2].BaseObject);
        Assert.Equal(1, (int)r.Output[4].BaseObject);
        Assert.Equal(1, (int)r.Output[5].BaseObject);
        var replica = Programs.MustRun("zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", _replicaPool + "/data").Trim();
        Assert.Equal($"{_replicaPool}/data@{r.Output[6].BaseObject}", replica);
    }

    [Fact]
    public void Sync_ToAPortNobodyListensOn_IsVolumeSshConnectionFailed_AndTakesNoSnapshot()
    {
        _host.Require();
        InitializePools();
        var e = _ps.ExpectError("New-VmVolume -Name data | Sync-VmVolume -Destination $args[0] -IdentityFile $args[1] -KnownHostsFile $args[2]",
            _host.Destination(_replicaPool + "/data", SshTestHost.Port + 1), _host.IdentityFile, _host.KnownHostsFile);
        Assert.Equal("VolumeSshConnectionFailed,VmTools.Commands.SyncVmVolumeCommand", e.FullyQualifiedErrorId);
        Assert.Empty(_ps.Invoke("Get-VmVolumeSnapshot -VolumeId data"));
    }

    [Fact]
    public void Send_ToADestinationWithAPassword_IsRefusedBeforeAnythingRuns_AndDoesNotEchoIt()
    {
        var e = _ps.ExpectError("Send-VmVolumeSnapshot -Id nope -Destination 'ssh://root:s3cret@10.0.0.1/tank/x' -WhatIf");
        Assert.Equal("VolumeDestinationInvalid,VmTools.Commands.SendVmVolumeSnapshotCommand", e.FullyQualifiedErrorId);
        Assert.DoesNotContain("s3cret", e.Exception.Message);
        e = _ps.ExpectError("Sync-VmVolume -VolumeId nope -Destination 'ssh://root@10.0.0.1/tank/x;reboot'");
        Assert.Equal("VolumeDatasetNameInvalid,VmTools.Commands.SyncVmVolumeCommand", e.FullyQualifiedErrorId);
    }

    private void InitializePools()
    {
        _ps.Invoke("Initialize-VmVolumePool -PoolName $args[0] -VdevPath $args[1] -Size 512MB -WorkingDirectory $args[2] | Out-Null",
            _pool, _home.Combine("vdev", _pool + ".vdev"), _home.Combine("zfs"));
        var vdev = _home.Combine("vdev", _replicaPool + ".vdev");
        using (var f = File.Create(vdev)) f.SetLength(256L << 20);
        Programs.MustRun("zpool", "create", "-m", _home.Combine("replica-mnt"), _replicaPool, vdev);
    }

    public void Dispose()
    {
        _ps.Dispose();
        ZfsFuseDaemon.DestroyPool(_pool);
        ZfsFuseDaemon.DestroyPool(_replicaPool);
        _home.Dispose();
    }
}
