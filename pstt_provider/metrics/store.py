"""
Delivery summaries of every task try, kept in Airflow's own metadata database.

Task processes in Airflow 3 cannot write to the metadata DB, and Airflow clears a task's XComs when its
next try starts, so an XCom is no durable record of a failed try. The operator therefore also leaves its
summary in an Airflow Variable (``pstt_try_<digest>``, written through the task's own execution API, so it
survives a broker outage and a retry), and the server side moves each one into ``pstt_delivery_tries``
and deletes the Variable. A try that ended without leaving a summary (killed, timed out in its worker,
lost) is still counted: Airflow keeps every try in ``task_instance`` / ``task_instance_history``, and a
pstt operator's try that has been over for ``[pstt] summary_grace_s`` without a summary is stored as it ended,
marked ``reported = false``; a summary arriving later replaces it.

:func:`ingest` and :func:`cleanup` are the only writers; they run in the API server's background task
(see ``pstt_provider.plugins.api``). Every read path (:func:`tries`) only reads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from airflow.models.taskinstance import TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from airflow.models.variable import Variable
from airflow.utils.sqlalchemy import UtcDateTime
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
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
    union_all,
)
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pstt_provider import options
from pstt_provider.latency import LatencyHistogram
from pstt_provider.summary import VARIABLE_PREFIX, DeliverySummary

log = logging.getLogger(__name__)

WATERMARK_OVERLAP = timedelta(minutes=10)
"""Task end dates are re-read this far before the watermark, for tries whose rows committed late."""
PSTT_OPERATORS = ("SqlToKafkaOperator", "OracleToKafkaOperator")
NO_SUMMARY = "the try ended without reporting a delivery summary (killed, timed out or its worker was lost)"
ENDED_STATES = ("success", "failed", "up_for_retry")

metadata = MetaData()

tries_table = Table(
    "pstt_delivery_tries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False),
    Column("try_number", Integer, nullable=False),
    Column("display_name", String(250), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("delivery", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in DeliverySummary.COUNTS),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("latency_histogram", Text, nullable=False),
    Column("errors", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("reported", Boolean, nullable=False),
    Column("ingested_at", UtcDateTime, nullable=False),
    UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "try_number", name="pstt_delivery_tries_try_uq"),
    Index("pstt_delivery_tries_finished_idx", "finished_at"),
    Index("pstt_delivery_tries_topic_idx", "topic", "finished_at"),
)

retired_table = Table(
    "pstt_retired_tries",
    metadata,
    Column("dag_id", String(250), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("tries", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in DeliverySummary.COUNTS),
    Column("latency_histogram", Text, nullable=False),
    Column("last_finished_at", UtcDateTime, nullable=False),
)
"""What retention deleted, summed per job, topic and final state, so lifetime counters (Prometheus) never drop."""

state_table = Table(
    "pstt_metrics_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", UtcDateTime, nullable=False),
)

_TRIES_WATERMARK = "tries_watermark"
_PURGED_BEFORE = "purged_before"
_CLEANUP_STARTED = "cleanup_started"
_ready_engines: set[str] = set()
_create_lock = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_tables(bind: Engine | Connection) -> None:
    """Create the pstt tables on first use; they live beside Airflow's and outside its migrations."""
    engine = bind.engine
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


def tables_exist(bind: Engine | Connection) -> bool:
    """Whether the pstt tables are there, without creating them (read paths never write)."""
    return all(inspect(bind.engine).has_table(table.name) for table in metadata.sorted_tables)


def summary_row(summary: DeliverySummary, now: datetime) -> dict[str, Any]:
    """One ``pstt_delivery_tries`` row."""
    return {
        "dag_id": summary.dag_id,
        "run_id": summary.run_id,
        "task_id": summary.task_id,
        "map_index": summary.map_index,
        "try_number": summary.try_number,
        "display_name": summary.display_name[:250],
        "topic": summary.topic[:255],
        "delivery": summary.delivery[:32],
        "state": summary.state,
        **{name: getattr(summary, name) for name in DeliverySummary.COUNTS},
        "started_at": summary.started_at,
        "finished_at": summary.finished_at,
        "latency_histogram": json.dumps(summary.latency.to_dict()),
        "errors": json.dumps(list(summary.errors)),
        "parameters": json.dumps(summary.parameters, default=str),
        "reported": summary.reported,
        "ingested_at": now,
    }


def _summary(row: Mapping[Any, Any]) -> DeliverySummary:
    return DeliverySummary(
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        task_id=row["task_id"],
        map_index=row["map_index"],
        try_number=row["try_number"],
        topic=row["topic"],
        delivery=row["delivery"],
        state=row["state"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        **{name: row[name] for name in DeliverySummary.COUNTS},
        latency=LatencyHistogram.from_dict(json.loads(row["latency_histogram"])),
        errors=tuple(json.loads(row["errors"])),
        display_name=row["display_name"],
        parameters=json.loads(row["parameters"]),
        reported=bool(row["reported"]),
    )


def _state(session: Session, name: str) -> datetime | None:
    return session.scalar(select(state_table.c.value).where(state_table.c.name == name))


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite, PostgreSQL) or ON DUPLICATE KEY (MySQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.mysql import insert as mysql_insert

    return mysql_insert


def _set_state(session: Session, name: str, value: datetime) -> None:
    """Upsert, as concurrent readers (API server workers, ``pstt health``) may write the same state."""
    statement = _insert(session)(state_table).values(name=name, value=value)
    if session.get_bind().dialect.name == "mysql":
        statement = statement.on_duplicate_key_update(value=value)
    else:
        statement = statement.on_conflict_do_update(index_elements=["name"], set_={"value": value})
    session.execute(statement)


def _upsert(session: Session, rows: list[dict[str, Any]]) -> int:
    """
    Store the tries: a new try is inserted; a stored one is replaced only when it has no summary yet and the
    new row has one (whatever other writers do meanwhile: the unique try key decides).
    """
    added = 0
    dialect = session.get_bind().dialect.name
    for row in rows:
        statement = _insert(session)(tries_table).values(row)
        if dialect == "mysql":
            update = {name: statement.inserted[name] for name in row} if row["reported"] else {"id": tries_table.c.id}
            statement = statement.on_duplicate_key_update(**update)
        elif row["reported"]:
            statement = statement.on_conflict_do_update(
                index_elements=["dag_id", "run_id", "task_id", "map_index", "try_number"],
                set_={name: statement.excluded[name] for name in row},
                where=tries_table.c.reported.is_(False),
            )
        else:
            statement = statement.on_conflict_do_nothing(
                index_elements=["dag_id", "run_id", "task_id", "map_index", "try_number"]
            )
        added += _rowcount(session.execute(statement))
    return added


def _rowcount(result: Result[Any]) -> int:
    """Rows an INSERT, UPDATE or DELETE touched: ``Session.execute`` types its result as a plain ``Result``."""
    return cast("CursorResult[Any]", result).rowcount


def _take_summaries(session: Session, now: datetime) -> list[dict[str, Any]]:
    """The summaries tasks left in Variables, deleted as they are read (they are copied in the same commit)."""
    rows = []
    variables = session.scalars(select(Variable).where(Variable.key.startswith(VARIABLE_PREFIX))).all()
    for variable in variables:
        try:
            rows.append(summary_row(DeliverySummary.from_dict(json.loads(variable.val)), now))
        except (ValueError, TypeError) as error:
            log.warning("dropping Variable %s: not a pstt delivery summary (%s)", variable.key, error)
        session.delete(variable)
    return rows


def _unreported_tries(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Tries of pstt operators Airflow saw end, which left no summary within ``[pstt] summary_grace_s``."""
    grace = timedelta(seconds=options.SUMMARY_GRACE_S.get())
    watermark = _state(session, _TRIES_WATERMARK)
    columns = ("dag_id", "run_id", "task_id", "map_index", "try_number", "state", "start_date", "end_date")

    def ended(model: Any) -> Any:
        query = select(*(getattr(model, name) for name in columns)).where(
            model.operator.in_(PSTT_OPERATORS),
            model.state.in_(ENDED_STATES),
            model.end_date.is_not(None),
            model.end_date <= now - grace,
        )
        if watermark is not None:
            query = query.where(model.end_date >= watermark - WATERMARK_OVERLAP)
        return query

    found = session.execute(union_all(ended(TaskInstance), ended(TaskInstanceHistory))).mappings().all()
    since = watermark - WATERMARK_OVERLAP - grace if watermark else datetime.min.replace(tzinfo=UTC)
    stored = {
        tuple(row)
        for row in session.execute(
            select(
                tries_table.c.dag_id,
                tries_table.c.run_id,
                tries_table.c.task_id,
                tries_table.c.map_index,
                tries_table.c.try_number,
            ).where(tries_table.c.finished_at >= since)
        )
    }
    rows = []
    newest = watermark
    for row in found:
        newest = row["end_date"] if newest is None else max(newest, row["end_date"])
        key = (row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["try_number"])
        if key in stored:
            continue
        summary = DeliverySummary(
            *key,
            topic="",
            delivery="",
            state="success" if row["state"] == "success" else "failed",
            started_at=row["start_date"] or row["end_date"],
            finished_at=row["end_date"],
            errors=(NO_SUMMARY,),
            reported=False,
        )
        rows.append(summary_row(summary, now))
    if newest is not None and newest != watermark:
        _set_state(session, _TRIES_WATERMARK, newest)
    return rows


def ingest(session: Session) -> int:
    """Move the tasks' summaries into ``pstt_delivery_tries`` and record unreported tries; returns tries added."""
    ensure_tables(session.get_bind())
    now = utcnow()
    purged_before = _state(session, _PURGED_BEFORE)
    rows = [*_take_summaries(session, now), *_unreported_tries(session, now)]
    if purged_before is not None:
        rows = [row for row in rows if row["finished_at"] >= purged_before]
    added = _upsert(session, rows)
    session.commit()
    return added


@dataclass(frozen=True)
class TrySums:
    """Tries of one job, topic and final state, summed: how retention keeps what it deletes (``pstt_retired_tries``)."""

    dag_id: str
    topic: str
    state: str
    tries: int
    counts: Mapping[str, int]
    latency: LatencyHistogram
    last_finished_at: datetime

    @classmethod
    def of(cls, summary: DeliverySummary) -> TrySums:
        return cls(
            summary.dag_id,
            summary.topic,
            summary.state,
            tries=1,
            counts={name: getattr(summary, name) for name in DeliverySummary.COUNTS},
            latency=summary.latency,
            last_finished_at=summary.finished_at,
        )

    def plus(self, other: TrySums) -> TrySums:
        return TrySums(
            self.dag_id,
            self.topic,
            self.state,
            tries=self.tries + other.tries,
            counts={name: self.counts[name] + other.counts[name] for name in DeliverySummary.COUNTS},
            latency=LatencyHistogram.merged([self.latency, other.latency]),
            last_finished_at=max(self.last_finished_at, other.last_finished_at),
        )


def cleanup(session: Session, days: int) -> int:
    """
    Delete the runs that finished more than ``days`` days ago, first adding them to their ``pstt_retired_tries``
    sums; returns how many were deleted. Concurrent cleanups (several API server workers) take turns on a state
    row written before anything is read, so no try is summed twice.
    """
    ensure_tables(session.get_bind())
    cutoff = utcnow() - timedelta(days=days)
    old = tries_table.c.finished_at < cutoff
    deleted = 0
    if session.scalar(select(exists().where(old))):
        # The turn: a new transaction whose first statement is this write, so a concurrent cleanup waits here until
        # this one commits, and what it reads next (also under MySQL's repeatable read) is after this one's delete.
        session.commit()
        _set_state(session, _CLEANUP_STARTED, utcnow())
        _retire(session, [_summary(row) for row in session.execute(select(tries_table).where(old)).mappings()])
        deleted = _rowcount(session.execute(delete(tries_table).where(old)))
        purged_before = _state(session, _PURGED_BEFORE)
        if purged_before is None or cutoff > purged_before:
            _set_state(session, _PURGED_BEFORE, cutoff)
    session.commit()
    return deleted


def _retire(session: Session, old: list[DeliverySummary]) -> None:
    """Adds ``old`` to the sums of their job, topic and state."""
    sums = {(item.dag_id, item.topic, item.state): item for item in retired(session)}
    touched = set()
    for summary in old:
        key = (summary.dag_id, summary.topic, summary.state)
        sums[key] = sums[key].plus(TrySums.of(summary)) if key in sums else TrySums.of(summary)
        touched.add(key)
    for key in touched:
        item = sums[key]
        row = {
            "dag_id": item.dag_id,
            "topic": item.topic,
            "state": item.state,
            "tries": item.tries,
            **item.counts,
            "latency_histogram": json.dumps(item.latency.to_dict()),
            "last_finished_at": item.last_finished_at,
        }
        session.execute(
            delete(retired_table).where(
                retired_table.c.dag_id == item.dag_id,
                retired_table.c.topic == item.topic,
                retired_table.c.state == item.state,
            )
        )
        session.execute(retired_table.insert().values(row))


def retired(session: Session) -> list[TrySums]:
    """The sums of every deleted try, per job, topic and state."""
    if not tables_exist(session.get_bind()):
        return []
    return [
        TrySums(
            dag_id=row["dag_id"],
            topic=row["topic"],
            state=row["state"],
            tries=row["tries"],
            counts={name: row[name] for name in DeliverySummary.COUNTS},
            latency=LatencyHistogram.from_dict(json.loads(row["latency_histogram"])),
            last_finished_at=row["last_finished_at"],
        )
        for row in session.execute(select(retired_table)).mappings()
    ]


def maintain(session: Session) -> int:
    """The writer's round: bring in new summaries and unreported tries, then apply the configured retention."""
    added = ingest(session)
    cleanup(session, options.METRICS_RETENTION_DAYS.get())
    return added


def tries(
    session: Session,
    *,
    since: datetime | None = None,
    topic: str | None = None,
    dag_id: str | None = None,
    limit: int | None = None,
) -> list[DeliverySummary]:
    """Stored tries, newest first, optionally since a time, of one topic or DAG, at most ``limit``."""
    if not tables_exist(session.get_bind()):
        return []
    query = select(tries_table).order_by(tries_table.c.finished_at.desc(), tries_table.c.id.desc())
    if since is not None:
        query = query.where(tries_table.c.finished_at >= since)
    if topic is not None:
        query = query.where(tries_table.c.topic == topic)
    if dag_id is not None:
        query = query.where(tries_table.c.dag_id == dag_id)
    if limit is not None:
        query = query.limit(limit)
    return [_summary(row) for row in session.execute(query).mappings()]
