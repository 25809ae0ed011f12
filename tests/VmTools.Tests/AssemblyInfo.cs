// `$env:` in a hosted PowerShell engine is the process environment, shared by every runspace in this test
// process: tests that set VMTOOLS_HOME, REGISTRY_CACHE... would see each other's values if run in parallel.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
