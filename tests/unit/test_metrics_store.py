"""A task try's delivery summary as the store keeps it: one row per try, and what is refused (pure: no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics.store import summary_row
from pstt_provider.summary import DeliverySummary

NOW = datetime(2026, 1, 20, 11, 0, tzinfo=UTC)


def summary(**overrides) -> dict:
    """A summary as the operator leaves it in its ``pstt_try_`` Variable (``DeliverySummary.to_json``)."""
    histogram = LatencyHistogram()
    histogram.record(12.0)
    return {
        "dag_id": "d",
        "run_id": "r",
        "task_id": "t",
        "map_index": 3,
        "try_number": 2,
        "topic": "traces",
        "delivery": "exactly_once",
        "rows": 4,
        "messages_sent": 3,
        "messages_failed": 1,
        "messages_skipped": 0,
        "messages_dead_lettered": 0,
        "messages_aborted": 0,
        "bytes": 300,
        "duration_s": 1.5,
        "started_at": "2026-01-20T09:59:58.500000+00:00",
        "finished_at": "2026-01-20T10:00:00+00:00",
        "latency_ms": {"avg": 12.0, "p50": 12.0, "p99": 12.0, "max": 12.0},
        "latency_histogram": histogram.to_dict(),
        "state": "failed",
        "errors": ["DeliveryError: 1 of 4 message(s) were not acknowledged"],
        "display_name": "Tracce",
        "parameters": {"DATA": "2026-01-19"},
        **overrides,
    }


def test_a_summary_becomes_one_row_keyed_by_the_task_try():
    row = summary_row(DeliverySummary.from_dict(summary()), NOW)
    assert (row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["try_number"]) == ("d", "r", "t", 3, 2)
    assert (row["topic"], row["state"], row["messages_sent"], row["messages_failed"], row["bytes"]) == (
        "traces",
        "failed",
        3,
        1,
        300,
    )
    assert (row["display_name"], json.loads(row["parameters"]), row["reported"]) == (
        "Tracce",
        {"DATA": "2026-01-19"},
        True,
    )
    assert row["finished_at"] == datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
    assert LatencyHistogram.from_dict(json.loads(row["latency_histogram"])).total == 1
    assert json.loads(row["errors"]) == ["DeliveryError: 1 of 4 message(s) were not acknowledged"]


def test_the_variable_json_reads_back_as_the_same_summary():
    value = DeliverySummary.from_dict(summary())
    again = DeliverySummary.from_dict(json.loads(value.to_json()))
    assert again == value
    assert again.latency.to_dict() == value.latency.to_dict()
    assert summary_row(again, NOW) == summary_row(value, NOW)
    assert value.variable_key.startswith("pstt_try_")
    assert len(value.variable_key) <= 250


def test_a_version_1_summary_reads_with_the_new_fields_empty():
    old = summary()
    for name in ("display_name", "parameters", "messages_aborted", "map_index"):
        old.pop(name)
    value = DeliverySummary.from_dict(old)
    assert (value.display_name, value.parameters, value.messages_aborted, value.map_index) == ("", {}, 0, -1)
    assert value.schema_version == 1


@pytest.mark.parametrize("value", [{}, {"rows": 1}, summary(finished_at=None), summary(started_at="yesterday")])
def test_anything_else_is_refused(value):
    with pytest.raises(ValueError, match="not a pstt delivery summary"):
        DeliverySummary.from_dict(value)


def test_a_histogram_of_another_bucket_layout_is_refused_rather_than_merged_wrongly():
    with pytest.raises(ValueError, match="bucket layout"):
        DeliverySummary.from_dict(summary(latency_histogram={"growth": 2.0, "counts": {}}))
