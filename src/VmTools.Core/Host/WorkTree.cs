namespace VmTools.Core.Host;

/// <summary>Removes a scratch tree that may hold read-only folders (an unpacked rootfs has several).</summary>
public static class WorkTree
{
    public static void Remove(string path)
    {
        if (!Directory.Exists(path)) return;
        try
        {
            Directory.Delete(path, recursive: true);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not root: a folder without write permission keeps its entries; open them up and retry.
        }

        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true };
        foreach (var dir in Directory.EnumerateDirectories(path, "*", options).Prepend(path))
        {
            try
            {
                if (new DirectoryInfo(dir).LinkTarget is null) File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }

        try { Directory.Delete(path, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
