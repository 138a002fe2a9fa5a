"""
``pstt health``: the runbook's daily check, for a person or for cron.

Reads Airflow's database directly (the command runs where Airflow is configured), after bringing in new
delivery summaries exactly like the API server does, and probes every Kafka connection. Thresholds are
the seed's alert thresholds, overridable in airflow.cfg ``[pstt]`` (or ``AIRFLOW__PSTT__...``).
Exit code: 0 ok, 1 warning, 2 critical.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from pstt_provider.metrics import aggregate
from pstt_provider.metrics.kafka_health import ConnectionHealth

LEVELS = {"ok": 0, "warning": 1, "critical": 2}
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Thresholds:
    success_rate_warning: float = 98.0
    success_rate_critical: float = 95.0
    p99_warning_ms: float = 1000.0
    p99_critical_ms: float = 5000.0
    failed_runs_warning: int = 1
    failed_runs_critical: int = 0  # 0: failed runs alone never make the check critical

    @classmethod
    def from_config(cls) -> Thresholds:
        from airflow.configuration import conf

        defaults = cls()
        return cls(
            success_rate_warning=conf.getfloat("pstt", "success_rate_warning", fallback=defaults.success_rate_warning),
            success_rate_critical=conf.getfloat(
                "pstt", "success_rate_critical", fallback=defaults.success_rate_critical
            ),
            p99_warning_ms=conf.getfloat("pstt", "latency_p99_warning_ms", fallback=defaults.p99_warning_ms),
            p99_critical_ms=conf.getfloat("pstt", "latency_p99_critical_ms", fallback=defaults.p99_critical_ms),
            failed_runs_warning=conf.getint("pstt", "failed_runs_warning", fallback=defaults.failed_runs_warning),
            failed_runs_critical=conf.getint("pstt", "failed_runs_critical", fallback=defaults.failed_runs_critical),
        )


@dataclass(frozen=True)
class Check:
    name: str
    level: str
    message: str


def _at_least(value: float, threshold: float) -> bool:
    return threshold > 0 and value >= threshold


def evaluate(totals: dict[str, Any], connections: list[ConnectionHealth], limits: Thresholds) -> list[Check]:
    """The four checks of the runbook, each ok / warning / critical."""
    checks = []
    if not connections:
        checks.append(Check("kafka", "warning", "no Kafka connection is configured in Airflow"))
    for connection in connections:
        if connection.reachable:
            checks.append(Check(f"kafka {connection.conn_id}", "ok", f"reachable in {connection.latency_ms:.0f} ms"))
        else:
            checks.append(Check(f"kafka {connection.conn_id}", "critical", f"unreachable: {connection.error}"))

    rate = totals["success_rate"]
    level = (
        "critical" if rate < limits.success_rate_critical else "warning" if rate < limits.success_rate_warning else "ok"
    )
    detail = f"{totals['messages_sent']} sent, {totals['messages_failed']} failed"
    checks.append(
        Check(
            "success rate",
            level,
            f"{rate:.2f} % ({detail}; warning < {limits.success_rate_warning} %, "
            f"critical < {limits.success_rate_critical} %)",
        )
    )

    p99 = totals["p99_latency_ms"]
    level = "critical" if p99 > limits.p99_critical_ms else "warning" if p99 > limits.p99_warning_ms else "ok"
    checks.append(
        Check(
            "p99 latency",
            level,
            f"{p99:.1f} ms (warning > {limits.p99_warning_ms:.0f} ms, critical > {limits.p99_critical_ms:.0f} ms)",
        )
    )

    failed = totals["failed_runs"]
    level = (
        "critical"
        if _at_least(failed, limits.failed_runs_critical)
        else "warning"
        if _at_least(failed, limits.failed_runs_warning)
        else "ok"
    )
    checks.append(Check("failed runs", level, f"{failed} of {totals['runs']} delivery run(s) failed"))
    return checks


def overall(checks: list[Check]) -> str:
    return max((check.level for check in checks), key=LEVELS.__getitem__, default="ok")


def gather() -> tuple[dict[str, Any], list[ConnectionHealth]]:
    """Totals of the last 24 h from Airflow's database, and the Kafka connections' reachability."""
    from airflow.utils.session import create_session

    from pstt_provider.metrics import kafka_health, store

    with create_session() as session:
        store.refresh(session)
        runs = store.runs(session, since=store.utcnow() - WINDOW)
    return aggregate.totals(runs), kafka_health.check_all()


_MARKS = {"ok": "OK  ", "warning": "WARN", "critical": "CRIT"}


def render(checks: list[Check], status: str) -> str:
    lines = [f"pstt health: {status.upper()} (last 24 h)"]
    lines += [f"  [{_MARKS[check.level]}] {check.name}: {check.message}" for check in checks]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    totals, connections = gather()
    checks = evaluate(totals, connections, Thresholds.from_config())
    status = overall(checks)
    if args.json:
        report = {
            "status": status,
            "window_hours": int(WINDOW.total_seconds() // 3600),
            "checks": [asdict(check) for check in checks],
            "metrics": totals,
            "connections": [connection.as_dict() for connection in connections],
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(checks, status))
    return LEVELS[status]
