"""Summary, hourly and per-topic aggregation of stored delivery tries, and the failed tries named (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics.aggregate import (
    NO_ERROR_TEXT,
    UnknownPeriodError,
    failures,
    hourly,
    period_start,
    summary,
    topic_report,
    totals,
)
from pstt_provider.summary import DeliverySummary

NOW = datetime(2026, 1, 20, 10, 30, tzinfo=UTC)


def run(
    *,
    sent=0,
    failed=0,
    latencies=(),
    finished=NOW,
    topic="a",
    state="success",
    size=0,
    dag_id="d",
    run_id=None,
    try_number=1,
    errors=(),
    display_name="",
    **counts,
) -> DeliverySummary:
    histogram = LatencyHistogram()
    for ms in latencies:
        histogram.record(ms)
    return DeliverySummary(
        dag_id=dag_id,
        run_id=run_id or f"r{finished.isoformat()}{topic}",
        task_id="t",
        map_index=-1,
        try_number=try_number,
        topic=topic,
        delivery="at_least_once",
        state=state,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
        rows=sent + failed,
        messages_sent=sent,
        messages_failed=failed,
        bytes=size,
        latency=histogram,
        errors=errors,
        display_name=display_name,
        **counts,
    )


def test_totals_use_the_seed_field_names_and_count_rate_over_sent_plus_failed():
    result = totals([run(sent=25, size=6000), run(failed=5, state="failed")])
    assert result["total_messages"] == 30
    assert (result["messages_sent"], result["messages_failed"], result["total_bytes"]) == (25, 5, 6000)
    assert result["success_rate"] == pytest.approx(83.333, abs=0.001)
    assert (result["runs"], result["failed_runs"]) == (2, 1)


def test_no_messages_is_a_full_success_rate_not_a_division_by_zero():
    assert totals([])["success_rate"] == 100.0
    assert totals([])["try_success_rate"] == totals([])["run_success_rate"] == 100.0


def test_a_failed_try_and_its_successful_retry_are_two_tries_one_failed_and_one_successful_run():
    first = run(failed=4, state="failed", run_id="r1", try_number=1, messages_dead_lettered=2, messages_aborted=7)
    retry = run(sent=9, run_id="r1", try_number=2, finished=NOW + timedelta(minutes=5))
    other = run(state="failed", run_id="r2")  # a job run whose only try failed before sending anything
    result = totals([first, retry, other])
    assert (result["runs"], result["failed_runs"], result["try_success_rate"]) == (3, 2, pytest.approx(33.333, 0.01))
    assert (result["job_runs"], result["failed_job_runs"], result["run_success_rate"]) == (2, 1, 50.0)
    assert (result["messages_dead_lettered"], result["messages_aborted"]) == (2, 7)


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


def test_topic_report_lists_its_tries_as_summaries():
    report = topic_report("a", [run(sent=2, display_name="Job A")])
    assert report["messages_sent"] == 2
    assert [(item["display_name"], item["messages_sent"]) for item in report["recent_runs"]] == [("Job A", 2)]


def test_failures_name_every_failed_try_newest_first_with_the_best_display_name():
    older = run(state="failed", dag_id="d1", run_id="r1", finished=NOW - timedelta(hours=3), errors=("E1", "E2"))
    newer = run(state="failed", dag_id="d2", run_id="r2", try_number=2, display_name="Tracce", finished=NOW)
    unnamed = run(state="failed", dag_id="gone", run_id="r3", finished=NOW - timedelta(hours=5))
    fine = run(sent=3, dag_id="d1", run_id="r4")

    result = failures([older, fine, unnamed, newer], {"d1": "DAG one", "d2": "not used: the summary has one"})

    assert [(item["dag_id"], item["display_name"], item["run_id"], item["try_number"]) for item in result] == [
        ("d2", "Tracce", "r2", 2),
        ("d1", "DAG one", "r1", 1),
        ("gone", "gone", "r3", 1),
    ]
    assert [item["error"] for item in result] == [NO_ERROR_TEXT, "E1", NO_ERROR_TEXT]
    assert result[1]["finished_at"] == (NOW - timedelta(hours=3)).isoformat()
    assert failures([fine]) == []
