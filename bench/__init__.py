"""taskrail's benchmarks (`make bench` = `python -m bench.run`): ARCHITECTURE.md §7, measured on this machine.

1. intake under burst (:mod:`bench.intake`), 2. end-to-end throughput against the bare interpreter
(:mod:`bench.throughput`), 3. cold start and bundle size (:mod:`bench.coldstart`), 4. latency of one task
(:mod:`bench.latency`), 5. cost per million tasks (:mod:`taskrail.cost`). Loopback only, bounded in count and
time; figures and ratios are printed and written to docs/BENCHMARKS.md, never asserted.
"""
