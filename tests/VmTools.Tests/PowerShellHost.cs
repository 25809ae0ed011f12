using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace VmTools.Tests;

/// <summary>
/// A real PowerShell 7.6 engine with the built module (out/VmTools/VmTools.psd1) imported, as a
/// user's session would have it. Each instance has its own runspace and environment overrides.
/// </summary>
public sealed class PowerShellHost : IDisposable
{
    private readonly Runspace _runspace;

    public PowerShellHost(IDictionary<string, string?>? environment = null)
    {
        var iss = InitialSessionState.CreateDefault2();
        _runspace = RunspaceFactory.CreateRunspace(iss);
        _runspace.Open();
        if (environment is not null)
        {
            foreach (var (k, v) in environment) SetEnv(k, v);
        }

        Invoke("Import-Module $args[0] -ErrorAction Stop", ModuleManifest);
    }

    /// <summary>The manifest laid out by the build; tests never load the assembly any other way.</summary>
    public static string ModuleManifest
    {
        get
        {
            var psd1 = Path.Combine(RepositoryRoot, "out", "VmTools", "VmTools.psd1");
            if (!File.Exists(psd1)) throw new InvalidOperationException($"Module not built: {psd1} is missing (dotnet build VmTools.sln).");
            return psd1;
        }
    }

    /// <summary>The checkout these tests were built from (the folder holding VmTools.sln).</summary>
    public static string RepositoryRoot
    {
        get
        {
            var dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "VmTools.sln"))) dir = Path.GetDirectoryName(dir);
            return dir ?? throw new InvalidOperationException("Cannot find the repository root above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Sets a variable in the session's process environment, as `$env:NAME = value` would.</summary>
    /// <remarks>Set from .NET, not through a script: PowerShell would turn a null value into "" and leave the variable set but empty.</remarks>
    public void SetEnv(string name, string? value) => Environment.SetEnvironmentVariable(name, value);

    public void SetLocation(string path) => Invoke("$null = $ExecutionContext.SessionState.Path.SetLocation($args[0])", path);

    /// <summary>Runs a script that must succeed: any error record, terminating or not, fails the test with its id and message.</summary>
    public Collection<PSObject> Invoke(string script, params object?[] args)
    {
        PowerShellResult r;
        try
        {
            r = Run(script, args);
        }
        catch (RuntimeException e)
        {
            throw new Xunit.Sdk.XunitException($"'{script}' failed: {e.ErrorRecord?.FullyQualifiedErrorId}: {e.Message}\n{e.ErrorRecord?.ScriptStackTrace}\n{e.InnerException}");
        }

        if (r.Errors.Count > 0)
        {
            throw new Xunit.Sdk.XunitException($"'{script}' wrote errors: " + string.Join("\n", r.Errors.Select(e => $"{e.FullyQualifiedErrorId}: {e.Exception?.Message}\n{e.Exception?.StackTrace}")));
        }

        return r.Output;
    }

    public PowerShellResult Run(string script, params object?[] args)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        var output = ps.Invoke();
        return new PowerShellResult(output, ps.Streams.Error.ToList(), ps.Streams.Verbose.Select(v => v.Message).ToList(),
            ps.Streams.Warning.Select(w => w.Message).ToList(), ps.Streams.Progress.ToList(), ps.HadErrors);
    }

    /// <summary>Starts a script and presses Ctrl+C (PowerShell.Stop) once a progress record satisfies <paramref name="stopWhen"/>.</summary>
    public (bool Stopped, IReadOnlyList<ProgressRecord> Progress) RunAndStop(string script, Func<ProgressRecord, bool> stopWhen, params object?[] args)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        var stopRequested = 0;
        ps.Streams.Progress.DataAdded += (sender, e) =>
        {
            var record = ((PSDataCollection<ProgressRecord>)sender!)[e.Index];
            if (stopWhen(record) && Interlocked.Exchange(ref stopRequested, 1) == 0) ps.BeginStop(null, null);
        };
        var stopped = false;
        try
        {
            ps.Invoke();
        }
        catch (PipelineStoppedException)
        {
            stopped = true;
        }

        return (stopped || ps.InvocationStateInfo.State == PSInvocationState.Stopped, ps.Streams.Progress.ToList());
    }

    /// <summary>Starts a script and presses Ctrl+C (PowerShell.Stop) once an output object satisfies <paramref name="stopWhen"/>; returns whether it stopped and what it wrote.</summary>
    public (bool Stopped, IReadOnlyList<PSObject> Output) RunAndStopOnOutput(string script, Func<PSObject, bool> stopWhen, params object?[] args)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        using var output = new PSDataCollection<PSObject>();
        var stopRequested = 0;
        output.DataAdded += (sender, e) =>
        {
            var item = ((PSDataCollection<PSObject>)sender!)[e.Index];
            if (stopWhen(item) && Interlocked.Exchange(ref stopRequested, 1) == 0) ps.BeginStop(null, null);
        };
        var stopped = false;
        try
        {
            ps.Invoke(null, output);
        }
        catch (PipelineStoppedException)
        {
            stopped = true;
        }

        return (stopped || ps.InvocationStateInfo.State == PSInvocationState.Stopped, output.ToList());
    }

    /// <summary>Runs a script that must fail, and returns the ErrorRecord (terminating or not).</summary>
    public ErrorRecord ExpectError(string script, params object?[] args)
    {
        try
        {
            var r = Run(script, args);
            if (r.Errors.Count > 0) return r.Errors[0];
        }
        catch (RuntimeException e) when (e.ErrorRecord is not null)
        {
            return e.ErrorRecord;
        }

        throw new Xunit.Sdk.XunitException($"Expected an error from: {script}");
    }

    public void Dispose() => _runspace.Dispose();
}

public sealed record PowerShellResult(
    Collection<PSObject> Output,
    IReadOnlyList<ErrorRecord> Errors,
    IReadOnlyList<string> Verbose,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<ProgressRecord> Progress,
    bool HadErrors)
{
    /// <summary>Every text a user could see, for asserting that secrets never leak.</summary>
    public string AllText => string.Join('\n', Output.Select(o => o?.ToString()).Concat(Errors.Select(e => e.ToString() + e.Exception)).Concat(Verbose).Concat(Warnings).Concat(Progress.Select(p => p.StatusDescription)));
}
