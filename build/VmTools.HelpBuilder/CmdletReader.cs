using System.Reflection;

namespace VmTools.HelpBuilder;

/// <summary>
/// Reads cmdlet classes from a compiled module through a MetadataLoadContext: nothing is loaded to
/// run, so a net8.0 module compiled against PowerShellStandard.Library can be read from a net10.0
/// tool that has no PowerShell. Attributes are matched by full name for the same reason.
/// </summary>
public static class CmdletReader
{
    private const string Sma = "System.Management.Automation.";

    public static IReadOnlyList<CmdletShape> Read(string modulePath, IEnumerable<string> referencePaths)
    {
        var moduleDirectory = Path.GetDirectoryName(Path.GetFullPath(modulePath))!;
        var candidates = Directory.GetFiles(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "*.dll")
            .Concat(Directory.GetFiles(moduleDirectory, "*.dll"))
            .Concat(referencePaths.Select(Path.GetFullPath));
        using var context = new MetadataLoadContext(new PathAssemblyResolver(candidates));
        var module = context.LoadFromAssemblyPath(Path.GetFullPath(modulePath));
        return module.GetTypes()
            .Where(t => t is { IsPublic: true, IsAbstract: false } && Attribute(t.GetCustomAttributesData(), "CmdletAttribute") is not null)
            .Select(ReadCmdlet)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
    }

    private static CmdletShape ReadCmdlet(Type type)
    {
        var cmdlet = Attribute(type.GetCustomAttributesData(), "CmdletAttribute")!;
        var verb = (string)cmdlet.ConstructorArguments[0].Value!;
        var noun = (string)cmdlet.ConstructorArguments[1].Value!;
        var outputs = type.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == Sma + "OutputTypeAttribute")
            .SelectMany(a => Values(a.ConstructorArguments[0]))
            .Select(v => v is Type t ? t.FullName! : v?.ToString() ?? "")
            .Distinct()
            .ToList();
        return new CmdletShape(
            $"{verb}-{noun}",
            verb,
            noun,
            Named<string>(cmdlet, "DefaultParameterSetName"),
            Named<bool>(cmdlet, "SupportsShouldProcess"),
            outputs,
            ReadParameters(type));
    }

    private static List<ParameterShape> ReadParameters(Type type)
    {
        // Derived class first, then its bases: the declaration order a reader of the code sees.
        var members = new List<MemberInfo>();
        for (var t = type; t is not null && t.FullName != Sma + "PSCmdlet"; t = t.BaseType)
            members.AddRange(t.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .Where(m => m is PropertyInfo or FieldInfo));

        var parameters = new List<ParameterShape>();
        foreach (var member in members)
        {
            var attributes = member.GetCustomAttributesData();
            var sets = attributes.Where(a => a.AttributeType.FullName == Sma + "ParameterAttribute").Select(ReadSetEntry).ToList();
            if (sets.Count == 0)
                continue;
            var memberType = member is PropertyInfo p ? p.PropertyType : ((FieldInfo)member).FieldType;
            var aliases = attributes.Where(a => a.AttributeType.FullName == Sma + "AliasAttribute")
                .SelectMany(a => Values(a.ConstructorArguments[0])).Select(v => (string)v!).ToList();
            var validateSet = Attribute(attributes, "ValidateSetAttribute");
            var enumType = Unwrapped(memberType);
            IReadOnlyList<string> allowed = validateSet is not null
                ? Values(validateSet.ConstructorArguments[0]).Select(v => (string)v!).ToList()
                : enumType.IsEnum
                    ? enumType.GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => f.Name).ToList()
                    : [];
            parameters.Add(new ParameterShape(
                member.Name,
                Describe(memberType),
                aliases,
                Attribute(attributes, "SupportsWildcardsAttribute") is not null,
                allowed,
                sets));
        }
        return parameters;
    }

    private static ParameterSetEntry ReadSetEntry(CustomAttributeData parameter)
    {
        var position = Named<int?>(parameter, "Position");
        return new ParameterSetEntry(
            Named<string>(parameter, "ParameterSetName") ?? CmdletShape.AllParameterSets,
            Named<bool>(parameter, "Mandatory"),
            // PowerShell's "no position" is int.MinValue.
            position is null or int.MinValue ? null : position,
            Named<bool>(parameter, "ValueFromPipeline"),
            Named<bool>(parameter, "ValueFromPipelineByPropertyName"));
    }

    private static TypeShape Describe(Type type)
    {
        var bare = Unwrapped(type);
        return new TypeShape(ShortName(bare), bare.FullName ?? bare.Name);
    }

    /// <summary>
    /// T for Nullable&lt;T&gt;, as PowerShell shows it. Nullable.GetUnderlyingType cannot tell: it
    /// compares with the running runtime's Nullable, not the one in this metadata context.
    /// </summary>
    private static Type Unwrapped(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition().FullName == "System.Nullable`1" ? type.GetGenericArguments()[0] : type;

    private static string ShortName(Type type) =>
        type.IsArray ? ShortName(type.GetElementType()!) + "[]"
        : type.IsGenericType ? type.Name[..type.Name.IndexOf('`')] + "[" + string.Join(",", type.GetGenericArguments().Select(ShortName)) + "]"
        : type.Name;

    private static CustomAttributeData? Attribute(IEnumerable<CustomAttributeData> attributes, string name) =>
        attributes.FirstOrDefault(a => a.AttributeType.FullName == Sma + name);

    private static T? Named<T>(CustomAttributeData attribute, string name)
    {
        foreach (var argument in attribute.NamedArguments)
            if (argument.MemberName == name)
                return (T?)argument.TypedValue.Value;
        return default;
    }

    /// <summary>A params-array constructor argument arrives as a collection of typed arguments.</summary>
    private static IEnumerable<object?> Values(CustomAttributeTypedArgument argument) =>
        argument.Value is IEnumerable<CustomAttributeTypedArgument> items ? items.Select(i => i.Value) : [argument.Value];
}
