// Hosted sessions set VMTOOLS_HOME through the process environment ($env: is process-wide), so two
// test classes with different homes running at once would read each other's state directories.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
