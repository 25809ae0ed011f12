namespace VmTools.Core.Images;

/// <summary>
/// An exclusive lock per digest, shared by threads and processes (flock on a lock file), so concurrent
/// pulls of one image are joined: the second waits, then finds the first one's result in the store.
/// Removal takes the same lock without waiting, so a prune never deletes a digest a pull is writing.
/// </summary>
internal sealed class DigestLock : IDisposable
{
    private readonly FileStream _file;

    private DigestLock(FileStream file) => _file = file;

    public static async Task<DigestLock> AcquireAsync(string lockDirectory, string key, Action<string>? waiting, CancellationToken ct)
    {
        var path = PathFor(lockDirectory, key);
        var announced = false;
        while (true)
        {
            try
            {
                // FileShare.None takes flock(LOCK_EX|LOCK_NB) on Unix: a second opener, in any process, fails.
                return new DigestLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException)
            {
                if (!announced) { waiting?.Invoke($"Another pull of {key} is in progress; waiting for it."); announced = true; }
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The lock if nobody holds it, else null (never waits).</summary>
    public static DigestLock? TryAcquire(string lockDirectory, string key)
    {
        try
        {
            return new DigestLock(new FileStream(PathFor(lockDirectory, key), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string PathFor(string lockDirectory, string key)
    {
        Directory.CreateDirectory(lockDirectory);
        return Path.Combine(lockDirectory, key.Replace(':', '-') + ".lock");
    }

    public void Dispose() => _file.Dispose();
}
