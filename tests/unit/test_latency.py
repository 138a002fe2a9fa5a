from __future__ import annotations

import random

from pstt_provider.latency import LatencyHistogram


def test_quantiles_are_within_one_bucket_of_the_exact_value():
    rng = random.Random(1)
    values = [rng.lognormvariate(2, 1) for _ in range(10_000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.record(value)

    exact_p99 = sorted(values)[int(0.99 * len(values)) - 1]
    assert exact_p99 <= histogram.quantile_ms(0.99) <= exact_p99 * 1.1
    assert abs(histogram.avg_ms - sum(values) / len(values)) < 1e-9


def test_merged_histograms_give_the_percentile_of_all_values_not_an_average_of_percentiles():
    fast, slow = LatencyHistogram(), LatencyHistogram()
    for _ in range(990):
        fast.record(1.0)
    for _ in range(10):
        slow.record(1000.0)

    merged = LatencyHistogram.merged([LatencyHistogram.from_dict(fast.to_dict()), slow])

    assert merged.total == 1000
    assert merged.quantile_ms(0.99) <= 1.1
    assert merged.quantile_ms(0.999) == 1000.0
