"""The daily check's thresholds (pure): the seed's values, each crossed on its own."""

from __future__ import annotations

import pytest

from pstt_provider.health import Thresholds, evaluate, overall
from pstt_provider.metrics.kafka_health import ConnectionHealth

UP = [ConnectionHealth("kafka_default", True, 3.0, 1, None)]


def metrics(rate: float = 100.0, p99: float = 10.0, failed_runs: int = 0) -> dict:
    return {
        "success_rate": rate,
        "messages_sent": 0,
        "messages_failed": 0,
        "p99_latency_ms": p99,
        "failed_runs": failed_runs,
        "runs": 10,
    }


@pytest.mark.parametrize(
    ("totals", "connections", "expected"),
    [
        (metrics(), UP, "ok"),
        (metrics(rate=98.0), UP, "ok"),
        (metrics(rate=97.99), UP, "warning"),
        (metrics(rate=95.0), UP, "warning"),
        (metrics(rate=94.99), UP, "critical"),
        (metrics(p99=1000.0), UP, "ok"),
        (metrics(p99=1000.1), UP, "warning"),
        (metrics(p99=5000.1), UP, "critical"),
        (metrics(failed_runs=1), UP, "warning"),
        (metrics(), [ConnectionHealth("kafka_default", False, None, 0, "timed out")], "critical"),
        (metrics(), [], "warning"),
    ],
)
def test_seed_thresholds(totals, connections, expected):
    assert overall(evaluate(totals, connections, Thresholds())) == expected


def test_failed_runs_can_be_made_critical_by_configuration():
    limits = Thresholds(failed_runs_critical=3)
    assert overall(evaluate(metrics(failed_runs=2), UP, limits)) == "warning"
    assert overall(evaluate(metrics(failed_runs=3), UP, limits)) == "critical"
