using System.Collections;
using System.Reflection;
using System.Xml.Linq;
using VmTools.TestSupport;

namespace VmTools.Tests.Module;

/// <summary>
/// Every view of every shipped format file (out/VmTools/*.format.ps1xml) renders, through
/// Format-Table/Format-List and Out-String, the columns or list items it declares, without a
/// failing script block. The expected labels are read from the ps1xml itself, so a column added
/// to a view is checked without touching this test.
/// </summary>
public sealed class FormatViewTests : IDisposable
{
    private readonly TempDirectory _home = new();
    private readonly PowerShellHost _ps;

    public FormatViewTests()
    {
        _ps = new PowerShellHost(new Dictionary<string, string?> { ["VMTOOLS_HOME"] = _home.Path, ["SOURCE_DATE_EPOCH"] = null });
    }

    public static TheoryData<string> Views() => new(FormatView.All().Select(v => v.Key));

    [Fact]
    public void EveryShippedFormatFile_HasViews()
    {
        var files = FormatView.All().Select(v => v.File).Distinct().Order().ToList();
        Assert.Equal(["VmTools.CloudInit.format.ps1xml", "VmTools.Engine.format.ps1xml", "VmTools.Images.format.ps1xml",
            "VmTools.KubeVirt.format.ps1xml", "VmTools.Vms.format.ps1xml", "VmTools.Volumes.format.ps1xml"], files);
    }

    [Theory]
    [MemberData(nameof(Views))]
    public void View_RendersEveryDeclaredColumn(string key)
    {
        var view = FormatView.All().Single(v => v.Key == key);
        var sample = Representative(view.TypeName);
        var text = _ps.Invoke(
            "param($o, $view, $list) if ($list) { $o | Format-List -View $view -DisplayError | Out-String -Width 400 } else { $o | Format-Table -View $view -DisplayError | Out-String -Width 400 }",
            sample, view.Name, view.IsList).Single().ToString()!;

        Assert.DoesNotContain("#ERR", text, StringComparison.Ordinal);
        var lines = text.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToList();
        if (view.IsList)
        {
            // One "Label : value" line per item.
            foreach (var label in view.Labels)
                Assert.Contains(lines, l => l.StartsWith(label, StringComparison.Ordinal) && l[label.Length..].TrimStart().StartsWith(':'));
        }
        else
        {
            // The header row names every column, in order.
            var header = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(view.Labels, header);
        }

        // What a column shows by property name is the object's value (cut to a fixed width, where the
        // view sets one, with room for the ellipsis), not a blank.
        foreach (var (property, width) in view.Properties)
        {
            var value = _ps.Invoke("param($o, $p) $o.$p", sample, property).SingleOrDefault()?.BaseObject;
            if (value is string s && s.Length > 0) Assert.Contains(width is { } w && s.Length > w ? s[..(w - 1)] : s, text, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// An object of the view's type as users meet it: from the real cmdlet where that costs nothing
    /// (a config, a seed image, statistics of an empty state), otherwise the core type filled in
    /// with a sample value for every property.
    /// </summary>
    private object Representative(string typeName)
    {
        switch (typeName)
        {
            case "VmTools.Core.CloudInit.CloudInitConfig":
                return NewConfig().BaseObject;
            case "VmTools.Core.CloudInit.CloudInitIso":
                return _ps.Invoke("param($c, $p) $c | New-CloudInitIso -Path $p", NewConfig(), Path.Combine(_home.Path, "seed.iso")).Single().BaseObject;
            case "VmTools.Core.KubeVirt.VirtualMachineManifest":
                return _ps.Invoke("[pscustomobject]@{ Reference = 'registry.example/bases/debian'; Digest = 'sha256:' + ('ab' * 32) } | ConvertTo-KubeVirtVirtualMachine -Name sample -Namespace ci").Single().BaseObject;
            case "VmTools.Core.Images.CacheStatistics":
                return _ps.Invoke("Get-Qcow2CacheStatistics").Single().BaseObject;
        }

        // The module's types live in the engine's load context; ask the engine for the Type.
        var type = (Type)_ps.Invoke("param($n) [type]$n", typeName).Single().BaseObject;
        return SampleObjects.Create(type);
    }

    private System.Management.Automation.PSObject NewConfig()
    {
        var key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhH5n0t2yCkQy4sW7cD3sJ3jcHgm1cB9q0Xj7dFZf8Q ci@example";
        return _ps.Invoke("param($k) New-CloudInitConfig -Hostname vm-sample -UserName ci -SshAuthorizedKey $k -MacAddress 52:54:00:12:34:56", key).Single();
    }

    public void Dispose()
    {
        _ps.Dispose();
        _home.Dispose();
    }

    /// <summary>One View element of a shipped format file, with the labels it promises.</summary>
    private sealed record FormatView(string File, string Name, string TypeName, bool IsList, IReadOnlyList<string> Labels, IReadOnlyList<(string Name, int? Width)> Properties)
    {
        public string Key => $"{File}:{Name}";

        public static IReadOnlyList<FormatView> All()
        {
            var moduleDir = Path.GetDirectoryName(PowerShellHost.ModuleManifest)!;
            return Directory.GetFiles(moduleDir, "*.format.ps1xml").Order(StringComparer.Ordinal)
                .SelectMany(f => XDocument.Load(f).Descendants("View").Select(v => Read(Path.GetFileName(f), v)))
                .ToList();
        }

        private static FormatView Read(string file, XElement view)
        {
            var name = view.Element("Name")!.Value;
            var typeName = view.Element("ViewSelectedBy")!.Element("TypeName")!.Value;
            if (view.Element("TableControl") is { } table)
            {
                // A header without a Label shows its column's property name.
                var headers = table.Element("TableHeaders")!.Elements("TableColumnHeader").ToList();
                var items = table.Descendants("TableColumnItem").ToList();
                var labels = headers.Select((h, i) => h.Element("Label")?.Value ?? items[i].Element("PropertyName")!.Value).ToList();
                var properties = items.Select((item, i) => (Name: item.Element("PropertyName")?.Value, Width: headers[i].Element("Width") is { } w ? int.Parse(w.Value, System.Globalization.CultureInfo.InvariantCulture) : (int?)null))
                    .Where(p => p.Name is not null).Select(p => (p.Name!, p.Width)).ToList();
                return new FormatView(file, name, typeName, false, labels, properties);
            }

            var listItems = view.Descendants("ListItem").ToList();
            return new FormatView(file, name, typeName, true,
                listItems.Select(i => i.Element("Label")?.Value ?? i.Element("PropertyName")!.Value).ToList(),
                listItems.Select(i => i.Element("PropertyName")?.Value).OfType<string>().Select(n => (n, (int?)null)).ToList());
        }
    }

    /// <summary>
    /// Fills a core record with plausible values by type: strings named after their property (so a
    /// rendered value can be found), non-default enums and numbers, digests that look like digests.
    /// Nested core types are filled the same way.
    /// </summary>
    private static class SampleObjects
    {
        public static object Create(Type type, int depth = 0)
        {
            var constructor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
            var instance = constructor.Invoke(constructor.GetParameters().Select(p => Value(p.ParameterType, p.Name!, depth)).ToArray());
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
                property.SetValue(instance, Value(property.PropertyType, property.Name, depth));
            return instance;
        }

        private static object? Value(Type type, string name, int depth)
        {
            var bare = Nullable.GetUnderlyingType(type) ?? type;
            if (bare == typeof(string))
                return name.Contains("Digest", StringComparison.Ordinal) ? "sha256:" + new string('a', 64) : $"{name}-sample";
            if (bare == typeof(bool)) return true;
            if (bare.IsEnum) return Enum.GetValues(bare).Cast<object>().Last();
            if (bare == typeof(DateTimeOffset)) return new DateTimeOffset(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);
            if (bare == typeof(DateTime)) return new DateTime(2026, 11, 29, 12, 0, 0, DateTimeKind.Utc);
            if (bare == typeof(TimeSpan)) return TimeSpan.FromSeconds(1.5);
            if (bare == typeof(Guid)) return Guid.Parse("6a1f2c3d-0000-4000-8000-000000000001");
            if (bare.IsPrimitive || bare == typeof(decimal)) return Convert.ChangeType(3 * 1024 * 1024, bare, System.Globalization.CultureInfo.InvariantCulture);
            if (bare.IsArray) return Filled(bare.GetElementType()!, name, depth);
            if (bare.IsGenericType && bare.GetGenericArguments().Length == 1 && typeof(IEnumerable).IsAssignableFrom(bare))
            {
                var element = bare.GetGenericArguments()[0];
                var array = Filled(element, name, depth);
                return bare.IsInterface ? array : Activator.CreateInstance(bare, array);
            }

            if (bare.IsGenericType && bare.GetGenericTypeDefinition() is var d && (d == typeof(IReadOnlyDictionary<,>) || d == typeof(Dictionary<,>) || d == typeof(IDictionary<,>)))
                return Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(bare.GetGenericArguments()));
            if (bare.Namespace?.StartsWith("VmTools.Core", StringComparison.Ordinal) == true && depth < 2 && !bare.IsAbstract)
                return Create(bare, depth + 1);
            return null;
        }

        private static Array Filled(Type element, string name, int depth)
        {
            var array = Array.CreateInstance(element, 2);
            for (var i = 0; i < 2; i++) array.SetValue(Value(element, $"{name}{i}", depth), i);
            return array;
        }
    }
}
