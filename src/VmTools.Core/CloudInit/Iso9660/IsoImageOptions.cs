using System.Globalization;

namespace VmTools.Core.CloudInit.Iso9660;

/// <summary>
/// How an image is labelled and dated. Every timestamp on the image is <see cref="Timestamp"/>,
/// so identical content gives identical bytes.
/// </summary>
public sealed record IsoImageOptions
{
    /// <summary>The label cloud-init's NoCloud datasource looks for.</summary>
    public const string NoCloudLabel = "cidata";

    /// <summary>Used when SOURCE_DATE_EPOCH is not set: a fixed point, not the clock.</summary>
    public static readonly DateTimeOffset FixedTimestamp = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public string VolumeLabel { get; init; } = NoCloudLabel;

    public DateTimeOffset Timestamp { get; init; } = FixedTimestamp;

    /// <summary>Options dated by SOURCE_DATE_EPOCH (reproducible-builds.org) when it is set.</summary>
    public static IsoImageOptions FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var epoch = getEnv("SOURCE_DATE_EPOCH");
        if (string.IsNullOrWhiteSpace(epoch)) return new IsoImageOptions();
        if (!long.TryParse(epoch, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > 5_000_000_000)
        {
            throw new VmToolsException("SourceDateEpochInvalid", FailureKind.InvalidArgument,
                $"SOURCE_DATE_EPOCH must be whole seconds since 1970 (got '{epoch}').") { Target = epoch };
        }

        return new IsoImageOptions { Timestamp = DateTimeOffset.FromUnixTimeSeconds(seconds) };
    }

    internal void Validate()
    {
        // Joliet holds the label in 16 UCS-2 characters; the primary descriptor in 32 bytes.
        if (VolumeLabel.Length is 0 or > 16 || VolumeLabel.Any(c => c is < '!' or > '~'))
        {
            throw new VmToolsException("IsoVolumeLabelInvalid", FailureKind.InvalidArgument,
                $"The volume label '{VolumeLabel}' must be 1 to 16 printable ASCII characters without spaces.") { Target = VolumeLabel };
        }

        if (Timestamp.UtcDateTime.Year is < 1970 or > 2155)
        {
            throw new VmToolsException("SourceDateEpochInvalid", FailureKind.InvalidArgument,
                $"The image timestamp {Timestamp:O} cannot be recorded (ISO 9660 dates run from 1900 to 2155).") { Target = Timestamp };
        }
    }
}
