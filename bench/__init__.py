"""gnsweep's benchmarks: ratios measured side by side in one run (``python -m bench [SECTION ...]``).

Each section module has ``run(ctx) -> list[Table]``; ``bench.harness`` holds what they share. BENCHMARKS.md says what
each one measures, why, and the figures of the last full run.
"""
