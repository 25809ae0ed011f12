namespace VmTools.Core;

/// <summary>
/// A failure the user can act on. <see cref="ErrorId"/> is part of the module's contract:
/// cmdlets surface it as the ErrorRecord's ErrorId and tests assert it.
/// Messages must never carry credentials.
/// </summary>
public class VmToolsException : Exception
{
    public VmToolsException(string errorId, FailureKind kind, string message, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
    }

    public string ErrorId { get; }

    public FailureKind Kind { get; }

    /// <summary>The object the failure is about (a reference, a path, a VM name), shown as the ErrorRecord's target.</summary>
    public object? Target { get; init; }
}
