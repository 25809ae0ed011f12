namespace VmTools.Core.CloudInit;

/// <summary>
/// The guest-side setup script shipped in this assembly (Resources/vmtools-setup.sh), with the
/// seed label, payload folder and agent service filled in. Each value can still be overridden by
/// an environment variable in the guest.
/// </summary>
public static class SetupScript
{
    public const string GuestPath = "/usr/local/sbin/vmtools-setup";
    public const string SuccessMarker = "VMTOOLS-SETUP: OK";
    public const string FailureMarker = "VMTOOLS-SETUP: FAILED";

    public static string Template
    {
        get
        {
            using var stream = typeof(SetupScript).Assembly.GetManifestResourceStream("VmTools.Core.CloudInit.vmtools-setup.sh")
                ?? throw new InvalidOperationException("The setup script resource is missing from the assembly.");
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }

    public static string Render(string serviceName, string volumeLabel = Iso9660.IsoImageOptions.NoCloudLabel, string payloadDirectory = NoCloudSeed.PayloadDirectory)
        => Template.Replace("@@SERVICE@@", serviceName, StringComparison.Ordinal)
            .Replace("@@LABEL@@", volumeLabel, StringComparison.Ordinal)
            .Replace("@@PAYLOAD@@", payloadDirectory, StringComparison.Ordinal);
}
