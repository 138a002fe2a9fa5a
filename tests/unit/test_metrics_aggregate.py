"""Summary, hourly and per-topic aggregation of stored delivery runs (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics.aggregate import DeliveryRun, UnknownPeriodError, hourly, period_start, summary, totals

NOW = datetime(2026, 1, 20, 10, 30, tzinfo=UTC)


def run(*, sent=0, failed=0, latencies=(), finished=NOW, topic="a", state="success", size=0) -> DeliveryRun:
    histogram = LatencyHistogram()
    for ms in latencies:
        histogram.record(ms)
    return DeliveryRun(
        dag_id="d",
        run_id=f"r{finished.isoformat()}{topic}",
        task_id="t",
        map_index=-1,
        try_number=1,
        topic=topic,
        state=state,
        rows=sent + failed,
        messages_sent=sent,
        messages_failed=failed,
        messages_skipped=0,
        bytes=size,
        duration_s=1.0,
        started_at=None,
        finished_at=finished,
        latency=histogram,
    )


def test_totals_use_the_seed_field_names_and_count_rate_over_sent_plus_failed():
    result = totals([run(sent=25, size=6000), run(failed=5, state="failed")])
    assert result["total_messages"] == 30
    assert (result["messages_sent"], result["messages_failed"], result["total_bytes"]) == (25, 5, 6000)
    assert result["success_rate"] == pytest.approx(83.333, abs=0.001)
    assert (result["runs"], result["failed_runs"]) == (2, 1)


def test_no_messages_is_a_full_success_rate_not_a_division_by_zero():
    assert totals([])["success_rate"] == 100.0


def test_p99_across_runs_comes_from_merged_histograms_not_averaged_p99s():
    fast = run(sent=99, latencies=[10.0] * 99)
    slow = run(sent=1, latencies=[5000.0])
    # Averaging each run's p99 would say (10 + 5000) / 2; the merged distribution's p99 is the fast one.
    assert totals([fast, slow])["p99_latency_ms"] == pytest.approx(10.0, rel=0.1)
    assert totals([fast, slow])["avg_latency_ms"] == pytest.approx((99 * 10 + 5000) / 100, rel=1e-6)


def test_today_starts_at_local_midnight_and_other_periods_count_back():
    rome = ZoneInfo("Europe/Rome")
    assert period_start("today", NOW, rome) == datetime(2026, 1, 20, 0, 0, tzinfo=rome)
    assert period_start("24h", NOW, rome) == NOW - timedelta(hours=24)
    assert period_start("7d", NOW, rome) == NOW - timedelta(days=7)
    assert period_start("30d", NOW, rome) == NOW - timedelta(days=30)
    with pytest.raises(UnknownPeriodError):
        period_start("week", NOW, rome)


def test_summary_names_its_period():
    result = summary([run(sent=1)], "today", NOW)
    assert (result["period"], result["messages_sent"]) == ("today", 1)


def test_hourly_has_one_slot_per_hour_oldest_first_including_empty_hours():
    runs = [run(sent=3, finished=NOW - timedelta(minutes=5)), run(failed=2, finished=NOW - timedelta(hours=2))]
    slots = hourly(runs, 3, NOW)
    assert [slot["hour"] for slot in slots] == [
        "2026-01-20T08:00:00+00:00",
        "2026-01-20T09:00:00+00:00",
        "2026-01-20T10:00:00+00:00",
    ]
    assert [(slot["messages_sent"], slot["messages_failed"]) for slot in slots] == [(0, 2), (0, 0), (3, 0)]
