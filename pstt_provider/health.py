"""
``pstt health``: the runbook's daily check, for a person or for cron; the same report is served as
``GET /pstt/api/health``.

It finds Airflow's configuration as the ``airflow`` command does (``AIRFLOW_HOME``, default ``~/airflow``, its
``airflow.cfg`` or ``AIRFLOW_CONFIG``, and ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` over both) and reads the
metadata database directly: the tries the API server's background task stored (it never writes them itself),
Airflow's DAG display names, and the Kafka connections, which it probes. Thresholds are the seed's alert
thresholds, overridable in airflow.cfg ``[pstt]`` (or ``AIRFLOW__PSTT__...``). Exit code: 0 ok, 1 warning,
2 critical, also 2 (and one line saying what to set) when there is no initialised metadata database.

Importing Airflow creates ``$AIRFLOW_HOME/logs`` and connecting to a missing SQLite file creates that file, so
the database is looked for first, without Airflow and read-only (:func:`metadata_db_problem`).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sqlite3
import sys
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pstt_provider.metrics import aggregate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pstt_provider.metrics.kafka_health import ConnectionHealth

LEVELS = {"ok": 0, "warning": 1, "critical": 2}
WINDOW = timedelta(hours=24)
WHAT_TO_SET = (
    "set AIRFLOW_HOME to the Airflow home whose airflow.cfg names the metadata database, "
    "or AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to the database's URL"
)
MAX_FAILURES_SHOWN = 20
"""Failed tries listed by the text report (``--json`` lists them all)."""
STALE_BACKLOG_MIN_S = 300.0
"""A summary waiting longer than this (or ten writer intervals) means the writer is not running."""


@dataclass(frozen=True)
class Thresholds:
    success_rate_warning: float = 98.0
    success_rate_critical: float = 95.0
    p99_warning_ms: float = 1000.0
    p99_critical_ms: float = 5000.0
    failed_runs_warning: int = 1
    failed_runs_critical: int = 0  # 0: failed tries alone never make the check critical

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
class Backlog:
    """Summaries tasks left in Variables that the API server's writer has not stored yet."""

    waiting: int = 0
    oldest_age_s: float | None = None
    interval_s: float = 30.0

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


# ------------------------------------------------------------------------------------- the metadata DB


def _expand(value: str) -> str:
    """As Airflow expands its settings: environment variables, then ``~``."""
    return os.path.expanduser(os.path.expandvars(value))


def airflow_home() -> Path:
    return Path(_expand(os.environ.get("AIRFLOW_HOME", "~/airflow")))


def airflow_config(home: Path) -> Path:
    return Path(_expand(os.environ["AIRFLOW_CONFIG"])) if os.environ.get("AIRFLOW_CONFIG") else home / "airflow.cfg"


_INDIRECT = ("_cmd", "_secret")


def configured_sql_alchemy_conn(home: Path, config: Path) -> str | None:
    """
    The metadata DB URL Airflow will use, found without importing Airflow: the environment over airflow.cfg
    over the default SQLite file in AIRFLOW_HOME. None when it is given indirectly (``_cmd``, ``_secret``) or
    the file cannot be read: then Airflow itself resolves it.
    """
    for section in ("DATABASE", "CORE"):  # [core] sql_alchemy_conn is the deprecated spelling Airflow still reads
        name = f"AIRFLOW__{section}__SQL_ALCHEMY_CONN"
        if os.environ.get(name):
            return os.environ[name]
        if any(os.environ.get(name + suffix.upper()) for suffix in _INDIRECT):
            return None
    if config.is_file():
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(config, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            return None
        for section in ("database", "core"):
            if not parser.has_section(section):
                continue
            if parser.get(section, "sql_alchemy_conn", fallback=""):
                value = _expand(parser.get(section, "sql_alchemy_conn"))
                return None if "{" in value else value
            if any(parser.get(section, "sql_alchemy_conn" + suffix, fallback="") for suffix in _INDIRECT):
                return None
    return f"sqlite:///{home}/airflow.db"


def _where(home: Path, config: Path) -> str:
    """Where the database was looked for, as the user set it (or did not)."""
    where = f"AIRFLOW_HOME={home}" if "AIRFLOW_HOME" in os.environ else f"AIRFLOW_HOME is not set, so {home}"
    if "AIRFLOW_CONFIG" in os.environ:
        where += f", AIRFLOW_CONFIG={config}"
    return where if config.is_file() else f"{where}, without {config.name}"


def _sqlite_problem(url: str, where: str) -> str | None:
    """Whether a SQLite URL names an initialised Airflow DB, looked at read-only (nothing is created)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:
        return None  # Airflow will say what is wrong with it
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    if not path.is_file():
        return f"no Airflow metadata database at {path} ({where}): {WHAT_TO_SET}"
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)) as connection:
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('alembic_version', 'dag')"
                )
            }
    except sqlite3.Error as error:
        return f"cannot read the Airflow metadata database {path}: {error} ({where}): {WHAT_TO_SET}"
    if tables != {"alembic_version", "dag"}:
        return (
            f"{path} is not an initialised Airflow metadata database ({where}): run `airflow db migrate`, or "
            f"{WHAT_TO_SET}"
        )
    return None


def metadata_db_problem() -> str | None:
    """
    Why there is no Airflow metadata database to read, in one line, or None. Checked before Airflow is imported
    (importing it creates ``$AIRFLOW_HOME/logs``) and read-only, so a check run in the wrong place creates no file.
    """
    home = airflow_home()
    config = airflow_config(home)
    url = configured_sql_alchemy_conn(home, config)
    if url is None or not url.startswith("sqlite"):
        return None  # a server database: checked through Airflow (connecting to it creates nothing)
    return _sqlite_problem(url, _where(home, config))


def database_problem() -> str | None:
    """With Airflow configured: whether its metadata database answers and is initialised, in one line."""
    from airflow import settings
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    engine = settings.get_engine()
    where = _where(airflow_home(), airflow_config(airflow_home()))
    if engine.url.get_backend_name() == "sqlite":
        problem = _sqlite_problem(engine.url.render_as_string(hide_password=False), where)
        if problem:
            return problem
    try:
        with engine.connect() as connection:
            initialised = inspect(connection).has_table("alembic_version")
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return f"cannot reach the Airflow metadata database {engine.url!r}: {reason} ({where}): {WHAT_TO_SET}"
    if not initialised:
        return f"{engine.url!r} is not an initialised Airflow metadata database: run `airflow db migrate`"
    return None


# ------------------------------------------------------------------------------------------ the report


def dag_display_names(session: Session, dag_ids: Iterable[str]) -> dict[str, str]:
    """Airflow's display name of each DAG it knows (its dag_id when none was set)."""
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    wanted = sorted(set(dag_ids))
    if not wanted:
        return {}
    rows = session.execute(select(DagModel.dag_id, DagModel.dag_display_name).where(DagModel.dag_id.in_(wanted)))
    return {dag_id: name or dag_id for dag_id, name in rows}


def summary_backlog(session: Session, now: datetime) -> Backlog:
    """How many summaries wait in ``pstt_try_`` Variables for the writer, and the oldest one's age (reads only)."""
    from airflow.configuration import conf
    from airflow.models.variable import Variable
    from sqlalchemy import select

    from pstt_provider.summary import VARIABLE_PREFIX, DeliverySummary

    interval_s = conf.getfloat("pstt", "maintenance_interval_s", fallback=30.0)
    variables = session.scalars(select(Variable).where(Variable.key.startswith(VARIABLE_PREFIX))).all()
    oldest = None
    for variable in variables:
        try:
            finished = DeliverySummary.from_dict(json.loads(variable.val)).finished_at
        except Exception:  # undecryptable or not a summary: the writer drops it, it says nothing about age
            continue
        finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
        oldest = finished if oldest is None else min(oldest, finished)
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return Backlog(waiting=len(variables), oldest_age_s=age, interval_s=interval_s)


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
