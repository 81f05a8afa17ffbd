"""bench/live_progress.py's report (section 11 of docs/BENCHMARKS.md): enough samples that the p99 is not simply the
largest one, and a percentile that is the largest said to be."""

from __future__ import annotations

from bench.live_progress import PUSH_WRITES, PushLatency, push_latency_lines


def test_the_bench_times_enough_writes_that_its_p99_is_not_the_max():
    full = PushLatency(samples_ms=[float(n) for n in range(1, PUSH_WRITES + 1)])

    assert PUSH_WRITES >= 200
    assert not full.is_max(99) and full.percentile(99) < max(full.samples_ms)


def test_the_report_gives_p95_and_says_when_a_percentile_is_the_max():
    # Given 50 samples (the committed run's count): the nearest-rank p99 is the 50th, the largest
    few = PushLatency(samples_ms=[float(n) for n in range(1, 51)])

    text = push_latency_lines(few)

    assert "| samples | missing | p50 ms | p95 ms | p99 ms | max ms | mean ms |" in text
    assert "| 50 | 0 | 25.0 | 48.0 | 50.0 (the max: too few samples) | 50.0 | 25.5 |" in text


def test_with_enough_samples_no_percentile_is_labelled_the_max():
    text = push_latency_lines(PushLatency(samples_ms=[float(n) for n in range(1, 201)]))

    assert "| 200 | 0 | 100.0 | 190.0 | 198.0 | 200.0 | 100.5 |" in text and "the max" not in text
