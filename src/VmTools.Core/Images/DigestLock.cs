namespace VmTools.Core.Images;

/// <summary>
/// A lock per digest, shared by threads and processes (flock on a lock file). A pull, a publish keeping its local
/// copy, or a removal holds it exclusively, so concurrent pulls of one image are joined (the second waits, then finds
/// the first one's result in the store) and a prune never deletes a digest a pull or publish is writing. A hit, or a
/// -Destination placement, holds it shared while it reads the stored image (<see cref="ImageStore.UseVerifiedAsync"/>),
/// so they run side by side but a prune cannot delete the folder under them. Removal takes it without waiting (an
/// image in use is busy).
/// </summary>
internal sealed class DigestLock : IDisposable
{
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(100);

    private readonly FileStream _file;

    private DigestLock(FileStream file) => _file = file;

    /// <summary>The exclusive lock, waiting for other holders (a pull writing the digest).</summary>
    public static Task<DigestLock> AcquireAsync(string lockDirectory, string key, Action<string>? waiting, CancellationToken ct)
        => WaitAsync(lockDirectory, key, shared: false, waiting, ct);

    /// <summary>A shared lock for reading the stored image, waiting while a pull or a removal holds it exclusively.</summary>
    public static Task<DigestLock> AcquireSharedAsync(string lockDirectory, string key, Action<string>? waiting, CancellationToken ct)
        => WaitAsync(lockDirectory, key, shared: true, waiting, ct);

    /// <summary>The exclusive lock if nobody holds it, else null (never waits).</summary>
    public static DigestLock? TryAcquire(string lockDirectory, string key)
    {
        try
        {
            return Open(PathFor(lockDirectory, key), shared: false);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task<DigestLock> WaitAsync(string lockDirectory, string key, bool shared, Action<string>? waiting, CancellationToken ct)
    {
        var path = PathFor(lockDirectory, key);
        var announced = false;
        // Short polls first: a removal or another hit holds the lock for milliseconds, a pull for as long as it downloads.
        var poll = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            try
            {
                return Open(path, shared);
            }
            catch (IOException)
            {
                if (!announced) { waiting?.Invoke($"{key} is held by another pull, hit or removal; waiting for it."); announced = true; }
                await Task.Delay(poll, ct).ConfigureAwait(false);
                poll = poll * 2 < LongestPoll ? poll * 2 : LongestPoll;
            }
        }
    }

    /// <summary>
    /// On Unix FileShare.None takes flock(LOCK_EX|LOCK_NB) and a read-only open sharing writes takes LOCK_SH|LOCK_NB:
    /// a conflicting opener, in any process, fails with an IOException.
    /// </summary>
    private static DigestLock Open(string path, bool shared) => new(shared
        ? new FileStream(path, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite)
        : new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));

    private static string PathFor(string lockDirectory, string key)
    {
        Directory.CreateDirectory(lockDirectory);
        return Path.Combine(lockDirectory, key.Replace(':', '-') + ".lock");
    }

    public void Dispose() => _file.Dispose();
}
