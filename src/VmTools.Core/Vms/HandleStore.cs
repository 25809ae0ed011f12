using System.Collections.Concurrent;
using System.Text.Json;
using VmTools.Core.Host;

namespace VmTools.Core.Vms;

/// <summary>
/// Where transient handles live: a per-process cache and <c>&lt;vmdir&gt;/handles.json</c>. The file is
/// written atomically BEFORE the cache, so a crash between the two leaves disk ahead of memory
/// (recoverable) and never memory ahead of disk (stranded taps and loops).
/// </summary>
public static class HandleStore
{
    public const string FileName = "handles.json";

    private static readonly ConcurrentDictionary<string, VmHandles> Cache = new(StringComparer.Ordinal);
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static void Set(FlightVm vm, VmHandles handles)
    {
        PrivateFiles.CreateDirectory(vm.Directory);
        AtomicFile.WriteAllText(vm.HandlesPath, JsonSerializer.Serialize(handles, Json));
        Cache[vm.Id] = handles;
    }

    public static VmHandles? Cached(FlightVm vm) => Cache.GetValueOrDefault(vm.Id);

    /// <summary>The scratch file's handles; null when there is none. Throws VmHandlesCorrupt when it cannot be read.</summary>
    public static VmHandles? ReadFile(FlightVm vm)
    {
        string text;
        try
        {
            text = File.ReadAllText(vm.HandlesPath);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<VmHandles>(text) ?? throw new JsonException("the file holds null");
        }
        catch (JsonException e)
        {
            throw new VmToolsException("VmHandlesCorrupt", FailureKind.InvalidData,
                $"VM '{vm.Name}': {vm.HandlesPath} cannot be read ({e.Message}). Nothing was torn down for this VM; Stop-FlightVm -Force rediscovers its process and devices from the OS.", e)
            { Target = vm.Name };
        }
    }

    /// <summary>Drops both copies once everything they name is released.</summary>
    public static void Clear(FlightVm vm)
    {
        Cache.TryRemove(vm.Id, out _);
        AtomicFile.TryDelete(vm.HandlesPath);
    }

    /// <summary>Forgets the cache only (tests use this to act as a fresh process).</summary>
    public static void ForgetCache() => Cache.Clear();
}
