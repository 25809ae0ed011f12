namespace VmTools.Core;

/// <summary>
/// What went wrong, in words the cmdlet layer maps onto PowerShell's ErrorCategory.
/// The core stays free of PowerShell types, so it names its own kinds.
/// </summary>
public enum FailureKind
{
    InvalidArgument,
    InvalidData,
    NotFound,
    PermissionDenied,
    AuthenticationFailed,
    ConnectionFailed,
    ResourceExists,
    ResourceBusy,
    ResourceUnavailable,
    LimitsExceeded,
    NotImplemented,
    OperationStopped,
    OperationTimeout,
    SecurityError,
    InvalidOperation,
    WriteError,
    ReadError,
}
