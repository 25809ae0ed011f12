using System.Globalization;
using System.Management.Automation;

namespace VmTools;

/// <summary>
/// Lets a TimeSpan parameter take a plain number as days (<c>-OlderThan 30</c>), as admins write it;
/// without this PowerShell would read 30 as 30 ticks. TimeSpans and "d.hh:mm:ss" strings pass through.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class TimeSpanOrDaysAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject ps ? ps.BaseObject : inputData;
        return value switch
        {
            TimeSpan span => span,
            int or long or double or float or decimal or short or byte => TimeSpan.FromDays(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var days) => TimeSpan.FromDays(days),
            string s when TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out var span) => span,
            _ => throw new ArgumentTransformationMetadataException($"'{value}' is neither a TimeSpan nor a number of days."),
        };
    }
}
