using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using VmTools.Core.Host;

namespace VmTools.Core.Registry;

/// <summary>
/// A docker credential helper (<c>credHelpers</c>/<c>credsStore</c> in config.json or auth.json): runs
/// <c>docker-credential-&lt;name&gt; get</c> with the server on stdin, as docker does, and reads
/// <c>{"Username","Secret"}</c> from stdout. The program is looked up on PATH by VmTools itself and run by
/// its full path (argv, no shell); its output is never echoed, since it holds a secret.
/// </summary>
public static partial class CredentialHelper
{
    public static RegistryCredential? Get(string helper, string serverUrl, Func<string, string?> getEnv, ICommandRunner runner, string configFile)
    {
        if (!HelperName().IsMatch(helper))
        {
            throw new VmToolsException("RegistryCredentialHelperInvalid", FailureKind.InvalidData,
                $"'{configFile}' names credential helper '{helper}'; a helper name is letters, digits, '.', '_' and '-'.") { Target = helper };
        }

        var program = "docker-credential-" + helper;
        var path = (getEnv("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists)
            ?? throw new VmToolsException("RegistryCredentialHelperNotFound", FailureKind.NotFound,
                $"'{configFile}' says to get credentials for {serverUrl} from '{program}', which is not on PATH.") { Target = program };
        var spec = new CommandSpec(path, new[] { "get" })
        {
            WriteStdin = (s, ct) => s.WriteAsync(Encoding.UTF8.GetBytes(serverUrl + "\n"), ct).AsTask(),
        };

        // Called from RegistryClient's constructor, which the cmdlets run on the thread pool: no context to deadlock on.
        var result = runner.RunAsync(spec).GetAwaiter().GetResult();
        if (!result.Succeeded)
        {
            // docker-credential-helpers answer an unknown server with this text and exit 1: no login, not a failure.
            if ((result.StandardOutput + result.StandardError).Contains("credentials not found", StringComparison.OrdinalIgnoreCase)) return null;
            throw new VmToolsException("RegistryCredentialHelperFailed", FailureKind.AuthenticationFailed,
                $"{program} get for {serverUrl} exited with {result.ExitCode}.") { Target = program };
        }

        try
        {
            using var doc = JsonDocument.Parse(result.StandardOutput);
            var user = doc.RootElement.TryGetProperty("Username", out var u) ? u.GetString() : null;
            var secret = doc.RootElement.TryGetProperty("Secret", out var s) ? s.GetString() : null;
            // "<token>" marks an identity token (an OAuth refresh token), which the registry client does not exchange.
            if (string.IsNullOrEmpty(user) || string.IsNullOrEmpty(secret) || user == "<token>") return null;
            return new RegistryCredential(user, secret) { Source = program };
        }
        catch (JsonException)
        {
            throw new VmToolsException("RegistryCredentialHelperFailed", FailureKind.AuthenticationFailed,
                $"{program} get for {serverUrl} did not print a credential as JSON.") { Target = program };
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex HelperName();
}
