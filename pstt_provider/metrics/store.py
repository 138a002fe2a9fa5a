"""
Delivery summaries kept in Airflow's own metadata database.

Task processes in Airflow 3 cannot write to the metadata DB, so the operator pushes its summary as the
XCom ``pstt_delivery`` and the server side (API server, ``pstt health``) copies new ones into
``pstt_delivery_runs`` whenever it reads. Our rows are independent of XCom retention: a retried try's
XCom is cleared by Airflow, but once copied its summary stays until our own retention removes it.

Ingestion is idempotent (one row per dag_id/run_id/task_id/map_index/try_number) and incremental: it
reads only XComs newer than a persisted watermark, minus a small overlap for rows committed late.
Cleanup records the cutoff it applied, so a summary whose XCom outlives it is never brought back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.configuration import conf
from airflow.models.xcom import XComModel
from airflow.utils.sqlalchemy import UtcDateTime
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    exists,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics.aggregate import DeliveryRun

log = logging.getLogger(__name__)

XCOM_KEY = "pstt_delivery"
DEFAULT_RETENTION_DAYS = 90
# XCom timestamps are taken before the row commits; re-reading this much before the watermark catches
# a summary that committed after a newer one had already been ingested.
WATERMARK_OVERLAP = timedelta(minutes=10)

metadata = MetaData()

runs_table = Table(
    "pstt_delivery_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False),
    Column("try_number", Integer, nullable=False),
    Column("topic", String(255), nullable=False),
    Column("delivery", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("messages_sent", BigInteger, nullable=False),
    Column("messages_failed", BigInteger, nullable=False),
    Column("messages_skipped", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("latency_histogram", Text, nullable=False),
    Column("errors", Text, nullable=False),
    Column("ingested_at", UtcDateTime, nullable=False),
    UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "try_number", name="pstt_delivery_runs_try_uq"),
    Index("pstt_delivery_runs_finished_idx", "finished_at"),
    Index("pstt_delivery_runs_topic_idx", "topic", "finished_at"),
)

state_table = Table(
    "pstt_metrics_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", UtcDateTime, nullable=False),
)

_WATERMARK = "xcom_watermark"
_PURGED_BEFORE = "purged_before"
_ready_engines: set[str] = set()
_create_lock = threading.Lock()


class MalformedSummaryError(ValueError):
    """An XCom ``pstt_delivery`` value that is not a delivery summary of the documented format."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def retention_days() -> int:
    return conf.getint("pstt", "metrics_retention_days", fallback=DEFAULT_RETENTION_DAYS)


def ensure_tables(engine: Engine) -> None:
    """Create the pstt tables on first use; they live beside Airflow's and outside its migrations."""
    key = str(engine.url)
    if key in _ready_engines:
        return
    with _create_lock:
        if key in _ready_engines:
            return
        try:
            metadata.create_all(engine, checkfirst=True)
        except DBAPIError:
            # Another API server worker created them between our check and our CREATE.
            if not all(inspect(engine).has_table(table.name) for table in metadata.sorted_tables):
                raise
        _ready_engines.add(key)


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def summary_row(xcom: Mapping[str, Any], value: Any, now: datetime) -> dict[str, Any]:
    """One ``pstt_delivery_runs`` row from an XCom row's identity and its summary value."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping) or "topic" not in value:
        raise MalformedSummaryError(f"XCom {XCOM_KEY} of {xcom['dag_id']}/{xcom['run_id']}/{xcom['task_id']}")
    histogram = LatencyHistogram.from_dict(value.get("latency_histogram") or {})
    return {
        "dag_id": xcom["dag_id"],
        "run_id": xcom["run_id"],
        "task_id": xcom["task_id"],
        "map_index": xcom["map_index"],
        "try_number": int(value.get("try_number") or 1),
        "topic": str(value["topic"]),
        "delivery": str(value.get("delivery") or "at_least_once"),
        "state": str(value.get("state") or "success"),
        "rows": int(value.get("rows") or 0),
        "messages_sent": int(value.get("messages_sent") or 0),
        "messages_failed": int(value.get("messages_failed") or 0),
        "messages_skipped": int(value.get("messages_skipped") or 0),
        "bytes": int(value.get("bytes") or 0),
        "duration_s": float(value.get("duration_s") or 0.0),
        "started_at": _parse_time(value.get("started_at")),
        "finished_at": _parse_time(value.get("finished_at")) or xcom["timestamp"],
        "latency_histogram": json.dumps(histogram.to_dict()),
        "errors": json.dumps([str(error) for error in value.get("errors") or []]),
        "ingested_at": now,
    }


def _state(session: Session, name: str) -> datetime | None:
    return session.scalar(select(state_table.c.value).where(state_table.c.name == name))


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite, PostgreSQL) or ON DUPLICATE KEY (MySQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.mysql import insert
    return insert


def _set_state(session: Session, name: str, value: datetime) -> None:
    """Upsert, as concurrent readers (API server workers, ``pstt health``) may write the same state."""
    statement = _insert(session)(state_table).values(name=name, value=value)
    if session.get_bind().dialect.name == "mysql":
        statement = statement.on_duplicate_key_update(value=value)
    else:
        statement = statement.on_conflict_do_update(index_elements=["name"], set_={"value": value})
    session.execute(statement)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the rows not stored yet (the unique try key decides), whatever other readers do meanwhile."""
    if not rows:
        return 0
    statement = _insert(session)(runs_table)
    if session.get_bind().dialect.name == "mysql":
        return session.execute(statement.prefix_with("IGNORE"), rows).rowcount
    statement = statement.on_conflict_do_nothing(
        index_elements=["dag_id", "run_id", "task_id", "map_index", "try_number"]
    )
    return sum(session.execute(statement.values(row)).rowcount for row in rows)


def ingest(session: Session) -> int:
    """Copy new ``pstt_delivery`` XComs into ``pstt_delivery_runs``; returns how many runs were added."""
    ensure_tables(session.get_bind())
    watermark = _state(session, _WATERMARK)
    purged_before = _state(session, _PURGED_BEFORE)
    query = select(
        XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index, XComModel.timestamp, XComModel.value
    ).where(XComModel.key == XCOM_KEY)
    if watermark is not None:
        query = query.where(XComModel.timestamp >= watermark - WATERMARK_OVERLAP)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    newest = watermark
    for xcom in session.execute(query.order_by(XComModel.timestamp)):
        newest = xcom.timestamp if newest is None else max(newest, xcom.timestamp)
        try:
            row = summary_row(xcom._mapping, XComModel.deserialize_value(xcom), now)
        except (MalformedSummaryError, ValueError, TypeError) as error:
            log.warning("skipping a pstt_delivery XCom that is not a delivery summary: %s", error)
            continue
        if purged_before is None or row["finished_at"] >= purged_before:
            rows.append(row)
    added = _insert_new(session, rows)
    if newest is not None and newest != watermark:
        _set_state(session, _WATERMARK, newest)
    session.commit()
    return added


def cleanup(session: Session, days: int) -> int:
    """Delete the runs that finished more than ``days`` days ago; returns how many were deleted."""
    ensure_tables(session.get_bind())
    cutoff = utcnow() - timedelta(days=days)
    old = runs_table.c.finished_at < cutoff
    deleted = 0
    if session.scalar(select(exists().where(old))):
        deleted = session.execute(delete(runs_table).where(old)).rowcount
        purged_before = _state(session, _PURGED_BEFORE)
        if purged_before is None or cutoff > purged_before:
            _set_state(session, _PURGED_BEFORE, cutoff)
    session.commit()
    return deleted


def refresh(session: Session) -> None:
    """What every reader does first: bring in new summaries, then apply the configured retention."""
    ingest(session)
    cleanup(session, retention_days())


def _run(row: Mapping[str, Any]) -> DeliveryRun:
    return DeliveryRun(
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        task_id=row["task_id"],
        map_index=row["map_index"],
        try_number=row["try_number"],
        topic=row["topic"],
        state=row["state"],
        rows=row["rows"],
        messages_sent=row["messages_sent"],
        messages_failed=row["messages_failed"],
        messages_skipped=row["messages_skipped"],
        bytes=row["bytes"],
        duration_s=row["duration_s"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        latency=LatencyHistogram.from_dict(json.loads(row["latency_histogram"])),
        errors=tuple(json.loads(row["errors"])),
    )


def runs(
    session: Session,
    *,
    since: datetime | None = None,
    topic: str | None = None,
    limit: int | None = None,
) -> list[DeliveryRun]:
    """Stored runs, newest first, optionally since a time, of one topic, at most ``limit``."""
    ensure_tables(session.get_bind())
    query = select(runs_table).order_by(runs_table.c.finished_at.desc(), runs_table.c.id.desc())
    if since is not None:
        query = query.where(runs_table.c.finished_at >= since)
    if topic is not None:
        query = query.where(runs_table.c.topic == topic)
    if limit is not None:
        query = query.limit(limit)
    return [_run(row) for row in session.execute(query).mappings()]
