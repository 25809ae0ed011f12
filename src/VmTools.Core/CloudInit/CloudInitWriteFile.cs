namespace VmTools.Core.CloudInit;

/// <summary>One <c>write_files</c> entry: text cloud-init writes into the guest before runcmd.</summary>
public sealed partial record CloudInitWriteFile(string Path, string Content, string Permissions = "0644", string Owner = "root:root")
{
    internal void Validate()
    {
        if (!Path.StartsWith('/') || Path.Split('/').Contains(".."))
        {
            throw new VmToolsException("CloudInitWriteFilePathInvalid", FailureKind.InvalidArgument,
                $"write_files path '{Path}' must be absolute and must not contain '..'.") { Target = Path };
        }

        if (!PermissionsPattern().IsMatch(Permissions))
        {
            throw new VmToolsException("CloudInitWriteFilePermissionsInvalid", FailureKind.InvalidArgument,
                $"write_files permissions '{Permissions}' for '{Path}' must be octal like '0644'.") { Target = Path };
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex("^0?[0-7]{3,4}$")]
    private static partial System.Text.RegularExpressions.Regex PermissionsPattern();
}
