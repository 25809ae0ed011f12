namespace VmTools.Core.CloudInit;

/// <summary>One <c>write_files</c> entry: text cloud-init writes into the guest before runcmd.</summary>
public sealed record CloudInitWriteFile(string Path, string Content, string Permissions = "0644", string Owner = "root:root")
{
    internal void Validate()
    {
        if (!Path.StartsWith('/') || Path.Split('/').Contains(".."))
        {
            throw new VmToolsException("CloudInitWriteFilePathInvalid", FailureKind.InvalidArgument,
                $"write_files path '{Path}' must be absolute and must not contain '..'.") { Target = Path };
        }

        if (!System.Text.RegularExpressions.Regex.IsMatch(Permissions, "^0?[0-7]{3,4}$"))
        {
            throw new VmToolsException("CloudInitWriteFilePermissionsInvalid", FailureKind.InvalidArgument,
                $"write_files permissions '{Permissions}' for '{Path}' must be octal like '0644'.") { Target = Path };
        }
    }
}
