"""What the demo, the tests and the benchmarks start for themselves (not part of the job-queue API)."""
