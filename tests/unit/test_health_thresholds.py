"""The daily check's thresholds (pure): the seed's values, each crossed on its own."""

from __future__ import annotations

import pytest

from pstt_provider.health import Thresholds, evaluate, overall
from pstt_provider.metrics.kafka_health import ConnectionHealth

UP = [ConnectionHealth("kafka_default", True, 3.0, 1, None)]


def metrics(rate: float = 100.0, p99: float = 10.0, failed_runs: int = 0, sent: int = 1000) -> dict:
    failed = round(sent * (100 - rate) / rate) if rate else sent
    return {
        "success_rate": rate,
        "total_messages": sent + failed,
        "messages_sent": sent,
        "messages_failed": failed,
        "p99_latency_ms": p99,
        "failed_runs": failed_runs,
        "runs": 10,
        "try_success_rate": 100.0 * (10 - failed_runs) / 10,
        "job_runs": 8,
        "failed_job_runs": 0,
        "run_success_rate": 100.0,
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


def test_a_try_that_failed_before_sending_anything_is_a_warning_not_a_healthy_100_percent():
    checks = {check.name: check for check in evaluate(metrics(sent=0, failed_runs=1), UP, Thresholds())}
    assert checks["success rate"].message.startswith("no message sent or failed")
    assert checks["failed runs"].level == "warning"
    assert checks["failed runs"].message == (
        "1 of 10 task tries failed (try success rate 90.00 %); 0 of 8 job runs failed in the end "
        "(run success rate 100.00 %)"
    )
    assert overall(list(checks.values())) == "warning"


def test_checks_hold_no_timing_that_changes_between_two_probes():
    fast = [ConnectionHealth("kafka_default", True, 3.0, 1, None)]
    slow = [ConnectionHealth("kafka_default", True, 250.0, 1, None)]
    assert evaluate(metrics(), fast, Thresholds()) == evaluate(metrics(), slow, Thresholds())
