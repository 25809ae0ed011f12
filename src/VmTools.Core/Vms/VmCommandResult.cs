namespace VmTools.Core.Vms;

/// <summary>What a command run in the guest over SSH returned.</summary>
public sealed record VmCommandResult(string Name, string Command, int ExitCode, string Output, string ErrorOutput);
