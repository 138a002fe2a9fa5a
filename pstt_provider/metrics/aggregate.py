"""
Aggregation of stored delivery summaries into the seed's metrics shapes (summary, hourly, per topic).

Pure functions over ``DeliverySummary`` values so they are unit-tested without a database. Percentiles
across runs always come from the merged per-run latency histograms: averaging p99s is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from pstt_provider.latency import LatencyHistogram
from pstt_provider.summary import DeliverySummary

PERIODS = ("today", "24h", "7d", "30d")


class UnknownPeriodError(ValueError):
    """A period name outside PERIODS."""


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


def totals(runs: Iterable[DeliverySummary]) -> dict[str, Any]:
    """
    Counts, bytes and latencies of any set of tries, with the seed's summary field names. ``runs`` counts
    task tries (the contract's name); ``job_runs`` counts DAG runs, each judged by its latest try, so a
    run that failed once and then succeeded is one successful run and one failed try. A parallel run is one job
    run of N parts (map indexes): it failed when the latest try of any part failed.
    """
    runs = list(runs)
    sent = sum(run.messages_sent for run in runs)
    failed = sum(run.messages_failed for run in runs)
    latency = LatencyHistogram.merged(run.latency for run in runs)
    total = sent + failed
    failed_tries = sum(1 for run in runs if run.state != "success")
    latest: dict[tuple[str, str, str, int], DeliverySummary] = {}
    for run in runs:
        key = run.key[:4]
        if key not in latest or run.try_number > latest[key].try_number:
            latest[key] = run
    job_runs: dict[tuple[str, str, str], bool] = {}
    for (dag_id, run_id, task_id, _part), run in latest.items():
        job_runs[dag_id, run_id, task_id] = job_runs.get((dag_id, run_id, task_id), True) and run.state == "success"
    failed_job_runs = sum(1 for succeeded in job_runs.values() if not succeeded)
    return {
        "total_messages": total,
        "messages_sent": sent,
        "messages_failed": failed,
        "messages_skipped": sum(run.messages_skipped for run in runs),
        "messages_dead_lettered": sum(run.messages_dead_lettered for run in runs),
        "messages_aborted": sum(run.messages_aborted for run in runs),
        "success_rate": _rate(sent, total),
        "total_bytes": sum(run.bytes for run in runs),
        "avg_latency_ms": _ms(latency.avg_ms),
        "p50_latency_ms": _ms(latency.quantile_ms(0.5)),
        "p99_latency_ms": _ms(latency.quantile_ms(0.99)),
        "max_latency_ms": _ms(latency.max_ms),
        "runs": len(runs),
        "failed_runs": failed_tries,
        "try_success_rate": _rate(len(runs) - failed_tries, len(runs)),
        "job_runs": len(job_runs),
        "failed_job_runs": failed_job_runs,
        "run_success_rate": _rate(len(job_runs) - failed_job_runs, len(job_runs)),
    }


def _rate(good: int, total: int) -> float:
    return round(100.0 * good / total, 3) if total else 100.0


def summary(runs: Iterable[DeliverySummary], period: str, since: datetime) -> dict[str, Any]:
    return {"period": period, "since": since.isoformat(), **totals(runs)}


def hourly(runs: Iterable[DeliverySummary], hours: int, now: datetime) -> list[dict[str, Any]]:
    """One entry per UTC hour of the last ``hours`` hours (oldest first), empty hours included."""
    current = now.replace(minute=0, second=0, microsecond=0)
    slots = [current - timedelta(hours=offset) for offset in range(hours - 1, -1, -1)]
    by_hour: dict[datetime, list[DeliverySummary]] = {slot: [] for slot in slots}
    for run in runs:
        slot = run.finished_at.replace(minute=0, second=0, microsecond=0)
        if slot in by_hour:
            by_hour[slot].append(run)
    return [{"hour": slot.isoformat(), **totals(by_hour[slot])} for slot in slots]


def topic_report(topic: str, latest_runs: Sequence[DeliverySummary]) -> dict[str, Any]:
    """Totals over the given most recent runs of one topic, and the runs themselves (newest first)."""
    return {"topic": topic, **totals(latest_runs), "recent_runs": [run.to_dict() for run in latest_runs]}


NO_ERROR_TEXT = "failed without an error message"


def failures(tries: Iterable[DeliverySummary], dag_display_names: Mapping[str, str] | None = None) -> list[dict]:
    """
    Every failed try, newest first, named for a person: the job's display name (the summary's, else the DAG's
    from ``dag_display_names``, else its dag_id), the run, the try and its first error.
    """
    names = dag_display_names or {}
    failed = sorted(
        (item for item in tries if item.state != "success"), key=lambda item: item.finished_at, reverse=True
    )
    return [
        {
            "dag_id": item.dag_id,
            "display_name": item.display_name or names.get(item.dag_id) or item.dag_id,
            "run_id": item.run_id,
            "task_id": item.task_id,
            "map_index": item.map_index,
            "try_number": item.try_number,
            "finished_at": item.finished_at.isoformat(),
            "error": item.errors[0] if item.errors else NO_ERROR_TEXT,
        }
        for item in failed
    ]
