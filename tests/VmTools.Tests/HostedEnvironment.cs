// PowerShellHost.SetEnv sets VMTOOLS_HOME in the *process* environment, which every runspace in
// this test process shares: two classes running in parallel would read each other's state folder.
// Until the host isolates it, hosted-engine classes run one at a time (they are few and short).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
