"""
``pstt health``: the runbook's daily check, for a person or for cron; the same report is served as
``GET /pstt/api/health``.

It reads Airflow's metadata database directly: the tries the API server's background task stored (it never
writes them itself), Airflow's DAG display names, and the Kafka connections, which it probes. Thresholds are the
seed's alert thresholds, overridable in airflow.cfg ``[pstt]`` (or ``AIRFLOW__PSTT__...``). Exit code: 0 ok,
1 warning, 2 critical, also 2 (and one line saying what to set) when there is no initialised metadata database:
:mod:`pstt_provider.metadata_db` looks for it first, without importing Airflow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from pstt_provider import options
from pstt_provider.metadata_db import database_problem, metadata_db_problem
from pstt_provider.metrics import aggregate

if TYPE_CHECKING:
    from airflow.models.variable import Variable
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

    from pstt_provider.metrics.kafka_health import ConnectionHealth

LEVELS = {"ok": 0, "warning": 1, "critical": 2}
WINDOW = timedelta(hours=24)
MAX_FAILURES_SHOWN = 20
"""Failed tries listed by the text report (``--json`` lists them all)."""
STALE_BACKLOG_MIN_S = 300.0
"""A summary waiting longer than this (or ten writer intervals) means the writer is not running."""


@dataclass(frozen=True)
class Thresholds:
    success_rate_warning: float = options.SUCCESS_RATE_WARNING.default
    success_rate_critical: float = options.SUCCESS_RATE_CRITICAL.default
    p99_warning_ms: float = options.LATENCY_P99_WARNING_MS.default
    p99_critical_ms: float = options.LATENCY_P99_CRITICAL_MS.default
    failed_runs_warning: int = options.FAILED_RUNS_WARNING.default
    failed_runs_critical: int = options.FAILED_RUNS_CRITICAL.default  # 0: failed tries alone never make it critical

    @classmethod
    def from_config(cls) -> Thresholds:
        return cls(
            success_rate_warning=options.SUCCESS_RATE_WARNING.get(),
            success_rate_critical=options.SUCCESS_RATE_CRITICAL.get(),
            p99_warning_ms=options.LATENCY_P99_WARNING_MS.get(),
            p99_critical_ms=options.LATENCY_P99_CRITICAL_MS.get(),
            failed_runs_warning=options.FAILED_RUNS_WARNING.get(),
            failed_runs_critical=options.FAILED_RUNS_CRITICAL.get(),
        )


@dataclass(frozen=True)
class Backlog:
    """Summaries tasks left in Variables that the API server's writer has not stored yet."""

    waiting: int = 0
    oldest_age_s: float | None = None
    interval_s: float = options.MAINTENANCE_INTERVAL_S.default

    @property
    def stale_after_s(self) -> float:
        return max(STALE_BACKLOG_MIN_S, 10 * self.interval_s)


@dataclass(frozen=True)
class Check:
    name: str
    level: str
    message: str


def _at_least(value: float, threshold: float) -> bool:
    return threshold > 0 and value >= threshold


def evaluate(
    totals: dict[str, Any],
    connections: list[ConnectionHealth],
    limits: Thresholds,
    backlog: Backlog | None = None,
) -> list[Check]:
    """
    The runbook's checks, each ok / warning / critical: every Kafka connection, the message success rate,
    the p99 latency, failed tries and (with ``backlog``) whether the metrics writer keeps up. Messages hold
    no timings that change from one probe to the next (those are in the report's ``connections``), so two
    reports of the same data are equal.
    """
    checks = []
    if not connections:
        checks.append(Check("kafka", "warning", "no Kafka connection is configured in Airflow"))
    for connection in connections:
        if connection.reachable:
            checks.append(Check(f"kafka {connection.conn_id}", "ok", f"reachable, {connection.brokers} broker(s)"))
        else:
            checks.append(Check(f"kafka {connection.conn_id}", "critical", f"unreachable: {connection.error}"))

    rate = totals["success_rate"]
    level = (
        "critical" if rate < limits.success_rate_critical else "warning" if rate < limits.success_rate_warning else "ok"
    )
    limits_text = f"warning < {limits.success_rate_warning} %, critical < {limits.success_rate_critical} %"
    if totals.get("total_messages", totals["messages_sent"] + totals["messages_failed"]):
        detail = f"{rate:.2f} % ({totals['messages_sent']} sent, {totals['messages_failed']} failed; {limits_text})"
    else:
        detail = f"no message sent or failed ({limits_text})"
    checks.append(Check("success rate", level, detail))

    p99 = totals["p99_latency_ms"]
    level = "critical" if p99 > limits.p99_critical_ms else "warning" if p99 > limits.p99_warning_ms else "ok"
    checks.append(
        Check(
            "p99 latency",
            level,
            f"{p99:.1f} ms (warning > {limits.p99_warning_ms:.0f} ms, critical > {limits.p99_critical_ms:.0f} ms)",
        )
    )

    # A try that failed before sending anything leaves the message rate at 100 %: this check is what catches it.
    failed, tries = totals["failed_runs"], totals["runs"]
    level = (
        "critical"
        if _at_least(failed, limits.failed_runs_critical)
        else "warning"
        if _at_least(failed, limits.failed_runs_warning)
        else "ok"
    )
    message = f"{failed} of {tries} task tries failed"
    if tries:
        message += f" (try success rate {totals.get('try_success_rate', 100.0 * (tries - failed) / tries):.2f} %)"
    if totals.get("job_runs"):
        message += (
            f"; {totals['failed_job_runs']} of {totals['job_runs']} job runs failed in the end"
            f" (run success rate {totals['run_success_rate']:.2f} %)"
        )
    checks.append(Check("failed runs", level, message))
    if backlog is not None:
        checks.append(_writer_check(backlog))
    return checks


def _writer_check(backlog: Backlog) -> Check:
    """The numbers above are only as fresh as the API server's writer: say so when it is not running."""
    if backlog.oldest_age_s is not None and backlog.oldest_age_s > backlog.stale_after_s:
        return Check(
            "metrics writer",
            "warning",
            f"tries' summaries waiting in Airflow Variables: {backlog.waiting}, the oldest for "
            f"{backlog.oldest_age_s / 60:.0f} min; they are not counted above: is the Airflow API server running? "
            f"(its background task stores them every {backlog.interval_s:g} s)",
        )
    return Check("metrics writer", "ok", "the API server's background task keeps the tries stored")


def overall(checks: list[Check]) -> str:
    return max((check.level for check in checks), key=LEVELS.__getitem__, default="ok")


def dag_display_names(session: Session, dag_ids: Iterable[str]) -> dict[str, str]:
    """Airflow's display name of each DAG it knows (its dag_id when none was set)."""
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    wanted = sorted(set(dag_ids))
    if not wanted:
        return {}
    # A hybrid property, which Airflow's annotations leave looking like a function to a type checker.
    display_name = cast("ColumnElement[str]", DagModel.dag_display_name)
    rows = session.execute(select(DagModel.dag_id, display_name).where(DagModel.dag_id.in_(wanted)))
    return {dag_id: name or dag_id for dag_id, name in rows}


def summary_backlog(session: Session, now: datetime) -> Backlog:
    """How many summaries wait in ``pstt_try_`` Variables for the writer, and the oldest one's age (reads only)."""
    from airflow.models.variable import Variable
    from sqlalchemy import select

    from pstt_provider.summary import VARIABLE_PREFIX

    interval_s = options.MAINTENANCE_INTERVAL_S.get()
    variables = session.scalars(select(Variable).where(Variable.key.startswith(VARIABLE_PREFIX))).all()
    oldest = min((when for variable in variables if (when := _finished_at(variable)) is not None), default=None)
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return Backlog(waiting=len(variables), oldest_age_s=age, interval_s=interval_s)


def _finished_at(variable: Variable) -> datetime | None:
    """When the try whose summary ``variable`` holds ended; None when undecryptable or not a summary (the writer
    drops those, they say nothing about age)."""
    from pstt_provider.summary import DeliverySummary

    try:
        finished = DeliverySummary.from_dict(json.loads(variable.val)).finished_at
    except Exception:
        return None
    return finished if finished.tzinfo else finished.replace(tzinfo=UTC)


def report() -> dict[str, Any]:
    """
    The daily check as JSON: ``status``, ``checks``, ``metrics`` (``runs`` = task tries, ``failed_runs`` = the
    failed ones), ``failures`` (every failed try of the window) and ``connections``. Only reads.
    """
    from airflow.utils.session import create_session

    from pstt_provider.metrics import kafka_health, store

    with create_session() as session:
        now = store.utcnow()
        tries = store.tries(session, since=now - WINDOW)
        names = dag_display_names(session, {item.dag_id for item in tries if item.state != "success"})
        backlog = summary_backlog(session, now)
    connections = kafka_health.check_all()
    totals = aggregate.totals(tries)
    checks = evaluate(totals, connections, Thresholds.from_config(), backlog)
    return {
        "status": overall(checks),
        "window_hours": int(WINDOW.total_seconds() // 3600),
        "checks": [asdict(check) for check in checks],
        "metrics": totals,
        "failures": aggregate.failures(tries, names),
        "connections": [connection.as_dict() for connection in connections],
    }


_MARKS = {"ok": "OK  ", "warning": "WARN", "critical": "CRIT"}


def _local_time(iso: str) -> str:
    from airflow import settings

    return datetime.fromisoformat(iso).astimezone(settings.TIMEZONE).strftime("%Y-%m-%d %H:%M:%S %Z")


def render(report_: dict[str, Any]) -> str:
    lines = [f"pstt health: {report_['status'].upper()} (last {report_['window_hours']} h)"]
    lines += [f"  [{_MARKS[check['level']]}] {check['name']}: {check['message']}" for check in report_["checks"]]
    failures = report_["failures"]
    if failures:
        lines.append(f"  failed tries ({len(failures)}, newest first):")
        for failure in failures[:MAX_FAILURES_SHOWN]:
            name = failure["display_name"]
            job = name if name == failure["dag_id"] else f"{name} ({failure['dag_id']})"
            lines.append(
                f"    {job} run {failure['run_id']} try {failure['try_number']}"
                f" at {_local_time(failure['finished_at'])}: {failure['error']}"
            )
        if len(failures) > MAX_FAILURES_SHOWN:
            lines.append(f"    ... and {len(failures) - MAX_FAILURES_SHOWN} more (pstt health --json lists them all)")
    return "\n".join(lines)


def _refuse(problem: str, as_json: bool) -> int:
    """No database to check: one line, exit 2 (critical), whether for a person or for a script."""
    if as_json:
        check = {"name": "airflow metadata database", "level": "critical", "message": problem}
        print(json.dumps({"status": "critical", "error": problem, "checks": [check], "metrics": {}, "failures": []}))
    else:
        print(f"pstt health: {problem}", file=sys.stderr)
    return LEVELS["critical"]


def main(args: argparse.Namespace) -> int:
    problem = metadata_db_problem()
    if problem is None:
        problem = database_problem()
    if problem is not None:
        return _refuse(problem, args.json)
    result = report()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(result))
    return LEVELS[result["status"]]
