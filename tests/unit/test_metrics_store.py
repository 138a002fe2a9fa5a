"""Turning an operator's pstt_delivery XCom into a stored run (pure: no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics.store import MalformedSummaryError, summary_row

XCOM = {
    "dag_id": "d",
    "run_id": "r",
    "task_id": "t",
    "map_index": 3,
    "timestamp": datetime(2026, 1, 20, 10, 0, tzinfo=UTC),
}
NOW = datetime(2026, 1, 20, 11, 0, tzinfo=UTC)


def summary(**overrides) -> dict:
    histogram = LatencyHistogram()
    histogram.record(12.0)
    return {
        "dag_id": "d",
        "run_id": "r",
        "task_id": "t",
        "try_number": 2,
        "topic": "traces",
        "delivery": "exactly_once",
        "rows": 4,
        "messages_sent": 3,
        "messages_failed": 1,
        "messages_skipped": 0,
        "bytes": 300,
        "duration_s": 1.5,
        "started_at": "2026-01-20T09:59:58.500000+00:00",
        "finished_at": "2026-01-20T10:00:00+00:00",
        "latency_ms": {"avg": 12.0, "p50": 12.0, "p99": 12.0, "max": 12.0},
        "latency_histogram": histogram.to_dict(),
        "state": "failed",
        "errors": ["DeliveryError: 1 of 4 message(s) were not acknowledged"],
        **overrides,
    }


def test_a_summary_becomes_one_row_keyed_by_the_task_try():
    row = summary_row(XCOM, summary(), NOW)
    assert (row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["try_number"]) == ("d", "r", "t", 3, 2)
    assert (row["topic"], row["state"], row["messages_sent"], row["messages_failed"], row["bytes"]) == (
        "traces",
        "failed",
        3,
        1,
        300,
    )
    assert row["finished_at"] == datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
    assert LatencyHistogram.from_dict(json.loads(row["latency_histogram"])).total == 1
    assert json.loads(row["errors"]) == ["DeliveryError: 1 of 4 message(s) were not acknowledged"]


def test_a_summary_stored_as_json_text_is_read_the_same():
    assert summary_row(XCOM, json.dumps(summary()), NOW) == summary_row(XCOM, summary(), NOW)


def test_a_summary_without_finish_time_takes_the_xcom_time():
    assert summary_row(XCOM, summary(finished_at=None), NOW)["finished_at"] == XCOM["timestamp"]


@pytest.mark.parametrize("value", [None, 42, ["not", "a", "summary"], {"rows": 1}])
def test_anything_else_is_refused(value):
    with pytest.raises(MalformedSummaryError):
        summary_row(XCOM, value, NOW)


def test_a_histogram_of_another_bucket_layout_is_refused_rather_than_merged_wrongly():
    with pytest.raises(ValueError, match="bucket layout"):
        summary_row(XCOM, summary(latency_histogram={"growth": 2.0, "counts": {}}), NOW)
