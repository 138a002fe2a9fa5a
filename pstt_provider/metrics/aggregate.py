"""
Aggregation of stored delivery summaries into the seed's metrics shapes (summary, hourly, per topic).

Pure functions over ``DeliveryRun`` values so they are unit-tested without a database. Percentiles
across runs always come from the merged per-run latency histograms: averaging p99s is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from pstt_provider.latency import LatencyHistogram

PERIODS = ("today", "24h", "7d", "30d")


class UnknownPeriodError(ValueError):
    """A period name outside PERIODS."""


@dataclass(frozen=True)
class DeliveryRun:
    """One task try's delivery summary, as stored in ``pstt_delivery_runs``."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    topic: str
    state: str
    rows: int
    messages_sent: int
    messages_failed: int
    messages_skipped: int
    bytes: int
    duration_s: float
    started_at: datetime | None
    finished_at: datetime
    latency: LatencyHistogram = field(compare=False)
    errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "topic": self.topic,
            "state": self.state,
            "rows": self.rows,
            "messages_sent": self.messages_sent,
            "messages_failed": self.messages_failed,
            "messages_skipped": self.messages_skipped,
            "bytes": self.bytes,
            "duration_s": round(self.duration_s, 3),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat(),
            "p50_latency_ms": _ms(self.latency.quantile_ms(0.5)),
            "p99_latency_ms": _ms(self.latency.quantile_ms(0.99)),
            "errors": list(self.errors),
        }


def _ms(value: float) -> float:
    return round(value, 3)


def period_start(period: str, now: datetime, local_tz: tzinfo) -> datetime:
    """Where a summary period begins; ``today`` starts at midnight in Airflow's default timezone."""
    if period == "today":
        local_now = now.astimezone(local_tz)
        return local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "24h":
        return now - timedelta(hours=24)
    if period == "7d":
        return now - timedelta(days=7)
    if period == "30d":
        return now - timedelta(days=30)
    raise UnknownPeriodError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")


def totals(runs: Iterable[DeliveryRun]) -> dict[str, Any]:
    """Counts, bytes and latencies of any set of runs, with the seed's summary field names."""
    runs = list(runs)
    sent = sum(run.messages_sent for run in runs)
    failed = sum(run.messages_failed for run in runs)
    latency = LatencyHistogram.merged(run.latency for run in runs)
    total = sent + failed
    return {
        "total_messages": total,
        "messages_sent": sent,
        "messages_failed": failed,
        "messages_skipped": sum(run.messages_skipped for run in runs),
        "success_rate": round(100.0 * sent / total, 3) if total else 100.0,
        "total_bytes": sum(run.bytes for run in runs),
        "avg_latency_ms": _ms(latency.avg_ms),
        "p50_latency_ms": _ms(latency.quantile_ms(0.5)),
        "p99_latency_ms": _ms(latency.quantile_ms(0.99)),
        "max_latency_ms": _ms(latency.max_ms),
        "runs": len(runs),
        "failed_runs": sum(1 for run in runs if run.state != "success"),
    }


def summary(runs: Iterable[DeliveryRun], period: str, since: datetime) -> dict[str, Any]:
    return {"period": period, "since": since.isoformat(), **totals(runs)}


def hourly(runs: Iterable[DeliveryRun], hours: int, now: datetime) -> list[dict[str, Any]]:
    """One entry per UTC hour of the last ``hours`` hours (oldest first), empty hours included."""
    current = now.replace(minute=0, second=0, microsecond=0)
    slots = [current - timedelta(hours=offset) for offset in range(hours - 1, -1, -1)]
    by_hour: dict[datetime, list[DeliveryRun]] = {slot: [] for slot in slots}
    for run in runs:
        slot = run.finished_at.replace(minute=0, second=0, microsecond=0)
        if slot in by_hour:
            by_hour[slot].append(run)
    return [{"hour": slot.isoformat(), **totals(by_hour[slot])} for slot in slots]


def topic_report(topic: str, latest_runs: Sequence[DeliveryRun]) -> dict[str, Any]:
    """Totals over the given most recent runs of one topic, and the runs themselves (newest first)."""
    return {"topic": topic, **totals(latest_runs), "recent_runs": [run.as_dict() for run in latest_runs]}
