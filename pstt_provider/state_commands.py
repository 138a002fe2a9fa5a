"""
``pstt state show|set|reset SPEC``: look at, move and clear a job's position in its state topic.

The position is where an incremental job's next run starts (or where a retry of a checkpointed run resumes),
kept in the compacted topic :data:`~pstt_provider.job_state.DEFAULT_STATE_TOPIC` on the job's own Kafka connection
(see :mod:`pstt_provider.job_state`). ``set`` and ``reset`` write it with the job's own guarantees: a committed
Kafka transaction under exactly_once (so the read_committed read of the next run sees it), an acknowledged
idempotent write under at_least_once. They refuse while a run of the DAG is queued or running in Airflow's metadata
database, because that run would overwrite the new position with its own at its next checkpoint or at its end;
when there is no metadata database to ask, they refuse too, unless ``--force`` says the operator checked.

Exit codes: 0 done, 2 anything else (an invalid spec, a job without a position, a refusal, an error), each said in
one line on stderr; ``show --json`` prints its error as JSON on stdout as well, so a script gets JSON either way.
Airflow is imported only after the metadata database was looked for (importing it creates ``$AIRFLOW_HOME/logs``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pstt_provider.exceptions import PsttError
from pstt_provider.job_state import DEFAULT_STATE_TOPIC, JobState, StateTopic, state_key
from pstt_provider.positions import Position, PositionError, parse_value, show_position

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from pstt_provider.factory.validation import JobConfig
    from pstt_provider.hooks.kafka import PsttKafkaHook

EXIT_OK = 0
EXIT_FAILED = 2
DEFAULT_TIMEOUT_S = 30.0
ACTIVE_STATES = ("queued", "running")
"""dag_run states of a run that may still write the position: it would overwrite what ``set``/``reset`` wrote."""
WRITTEN_BY = "pstt state set"
TRANSACTIONAL_PREFIX = "pstt-state-"


class StateCommandError(Exception):
    """What stops a ``pstt state`` command, in one line a user can act on."""


class NoRunsToAskError(StateCommandError):
    """Airflow's metadata database cannot be found or read, so whether a run is active is unknown."""


@dataclass(frozen=True)
class Job:
    """What ``pstt state`` needs of a spec: where the job's position is kept and what it is made of."""

    dag_id: str
    task_id: str
    kafka_conn_id: str
    delivery: str
    columns: tuple[str, ...]
    incremental: bool
    initial: Any = None

    @property
    def key(self) -> str:
        return state_key(self.dag_id, self.task_id)

    def next_start(self) -> str:
        """Where the next run starts without a stored position."""
        if not self.incremental:
            return f"the next run reads every row (in order of {', '.join(self.columns)})"
        if self.initial is not None:
            return f"the next run starts from incremental.initial ({_shown_value(self.initial)}, inclusive)"
        return "the next run starts from the first row (the spec has no incremental.initial)"


def job_of(config: JobConfig) -> Job:
    """The job of a valid spec; a spec without ``incremental`` and ``checkpoint_rows`` keeps no position."""
    from pstt_provider.factory.task_arguments import TASK_ID
    from pstt_provider.ordered_read import ordering

    spec = config.spec
    if spec.incremental is None and spec.checkpoint_rows is None:
        raise StateCommandError(
            f"{config.display} keeps no position: it has neither incremental nor checkpoint_rows, "
            "so every run reads every row"
        )
    incremental, order_by = ordering(
        spec.incremental.model_dump() if spec.incremental is not None else None, spec.order_by, spec.checkpoint_rows
    )
    return Job(
        dag_id=config.dag_id,
        task_id=TASK_ID,
        kafka_conn_id=spec.kafka_config.kafka_conn_id,
        delivery=spec.kafka_config.delivery,
        columns=incremental.columns if incremental is not None else order_by,
        incremental=incremental is not None,
        initial=incremental.initial if incremental is not None else None,
    )


def parse_position(text: str, columns: Sequence[str], stored: JobState | None) -> Position:
    """
    ``--to``: one value per order column, split on commas (so a value cannot contain one), each typed like the
    stored position's value of that column when the stored record is for the same columns, else as it reads
    (:func:`~pstt_provider.positions.parse_value`).
    """
    values = text.split(",")
    if len(values) != len(columns):
        raise StateCommandError(
            f"--to {text!r} has {len(values)} value(s), the job orders by {len(columns)} "
            f"({', '.join(columns)}): give {','.join(column.upper() for column in columns)}, separated by commas"
        )
    like: Sequence[Any] = (None,) * len(columns)
    if stored is not None and stored.position is not None and _same_columns(stored.columns, columns):
        like = stored.position
    position = []
    for column, value, typed in zip(columns, values, like, strict=True):
        if not value.strip():
            raise StateCommandError(f"--to {text!r}: the value of {column} is empty")
        try:
            position.append(parse_value(value, like=typed))
        except PositionError as err:
            raise StateCommandError(f"--to: {column}: {err}") from None
    return tuple(position)


def _same_columns(stored: Sequence[str], columns: Sequence[str]) -> bool:
    """As a run compares them: column names are case-insensitive."""
    return [column.lower() for column in stored] == [column.lower() for column in columns]


def _shown_value(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _load(spec: str) -> Job:
    """The spec, loaded as ``pstt render`` loads it; its problems, one per line, when it is invalid."""
    from pstt_provider.factory.commands import for_root
    from pstt_provider.factory.problems import SpecError
    from pstt_provider.factory.validation import validator_for

    cwd = Path.cwd()
    path = Path(spec)
    if not path.is_file():
        raise StateCommandError(f"{spec}: no such job spec file")
    # The timezone changes neither the DAG id nor the position; not asking Airflow for it saves importing Airflow.
    validator = for_root(validator_for(cwd, display_base=cwd, timezone="UTC"), [path])
    try:
        return job_of(validator.validate(path))
    except SpecError as err:
        raise StateCommandError("; ".join(map(str, err.problems)) or f"{spec}: invalid job spec") from None


def active_runs(dag_id: str) -> list[tuple[str, str]]:
    """
    The (state, run_id) of the DAG's queued and running runs in Airflow's metadata database, read only. Refuses
    when there is no database to ask: a missing one is looked for before Airflow is imported.
    """
    from pstt_provider.metadata_db import database_problem, metadata_db_problem

    problem = metadata_db_problem() or database_problem()
    if problem is not None:
        raise NoRunsToAskError(problem)
    from airflow import settings
    from sqlalchemy import column, select, table
    from sqlalchemy.exc import SQLAlchemyError

    dag_run = table("dag_run", column("dag_id"), column("run_id"), column("state"))
    query = (
        select(dag_run.c.state, dag_run.c.run_id)
        .where(dag_run.c.dag_id == dag_id, dag_run.c.state.in_(ACTIVE_STATES))
        .order_by(dag_run.c.run_id)
    )
    try:
        with settings.get_engine().connect() as connection:
            return [(str(state), str(run_id)) for state, run_id in connection.execute(query)]
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise NoRunsToAskError(f"cannot read the dag_run table of Airflow's metadata database: {reason}") from None


def _refuse_while_active(job: Job, force: bool) -> None:
    try:
        runs = active_runs(job.dag_id)
    except NoRunsToAskError as err:
        if not force:
            raise StateCommandError(
                f"cannot check for active runs of {job.dag_id}: {err}; or pass --force if you made sure none is active"
            ) from None
        print(f"warning: --force: not checked for active runs of {job.dag_id}: {err}", file=sys.stderr)
        return
    if runs:
        listed = ", ".join(f"{run_id} ({state})" for state, run_id in runs)
        raise StateCommandError(
            f"refused: {job.dag_id} has {len(runs)} active run(s): {listed}; it would overwrite the position: wait "
            "until it ends (pause the DAG so that no other starts), or mark it failed in Airflow, then retry"
        )


def _hook(job: Job, timeout_s: float) -> PsttKafkaHook:
    """The job's Kafka connection, answering: as a run starts, a broker that does not answer stops it here."""
    from pstt_provider.hooks.librdkafka_log import LibrdkafkaLog, quiet_logger
    from pstt_provider.metrics.kafka_health import kafka_hook

    try:
        hook = kafka_hook(job.kafka_conn_id)
    except (LookupError, ValueError) as err:
        raise StateCommandError(f"{err} (kafka_config.connection_name of the spec)") from None
    # The one-line error says what librdkafka's many lines would (a dead broker logs one per reconnect).
    hook.librdkafka_log = LibrdkafkaLog(quiet_logger(f"pstt.librdkafka.state.{job.kafka_conn_id}")[0])
    hook.probe(timeout_s).raise_for_problem()
    return hook


def _producer(hook: PsttKafkaHook, job: Job, timeout_s: float) -> Producer:
    """
    A producer with the job's guarantees, over the connection's settings (security included): acknowledged by
    every in-sync replica and idempotent; under exactly_once also transactional, with an id of the job's own
    (never a run's, so it fences no run) that fences an earlier ``pstt state`` write of the same job.
    """
    timeout_ms = max(1000, int(timeout_s * 1000))
    overrides: dict[str, Any] = {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
        "message.timeout.ms": timeout_ms,
    }
    if job.delivery == "exactly_once":
        overrides["transactional.id"] = TRANSACTIONAL_PREFIX + hashlib.sha256(job.key.encode()).hexdigest()[:32]
        overrides["transaction.timeout.ms"] = timeout_ms
    return hook.get_producer(overrides)


def _write(hook: PsttKafkaHook, state: StateTopic, job: Job, record: JobState | None, timeout_s: float) -> None:
    """``record`` (None: a tombstone) for the job, committed or acknowledged before this returns."""
    from confluent_kafka import KafkaException

    from pstt_provider.hooks.kafka import kafka_reason

    producer = _producer(hook, job, timeout_s)
    if job.delivery != "exactly_once":
        state.write(producer, job.key, record, timeout_s)
        return
    try:
        producer.init_transactions(timeout_s)
    except KafkaException as err:
        raise StateCommandError(
            f"cannot start a transaction to write the position of {job.key!r}: {kafka_reason(err)}"
        ) from None
    try:
        producer.begin_transaction()
        state.produce(producer, job.key, record)
        producer.commit_transaction(timeout_s)
    except KafkaException as err:
        with contextlib.suppress(KafkaException):
            # Ended now, so read_committed readers of the partition are not held up until it times out.
            producer.abort_transaction(timeout_s)
        raise StateCommandError(
            f"writing the position of {job.key!r} to {state.name!r} in a transaction failed: {kafka_reason(err)}"
        ) from None


def _where(job: Job, state: StateTopic) -> str:
    return f"{job.key} in topic {state.name} (Kafka connection {job.kafka_conn_id})"


def _position_text(columns: Sequence[str], position: Position | None) -> str:
    shown = show_position(columns, position)
    return ", ".join(f"{column} = {value}" for column, value in shown.items()) if shown else "none"


def show(job: Job, state: StateTopic, as_json: bool) -> None:
    stored = state.read(job.key)
    if as_json:
        document = {
            "dag_id": job.dag_id,
            "task_id": job.task_id,
            "key": job.key,
            "state_topic": state.name,
            "kafka_conn_id": job.kafka_conn_id,
            "columns": list(job.columns),
            "stored": stored.shown() if stored is not None else None,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if stored is None:
        print(f"{_where(job, state)}: nothing stored; {job.next_start()}")
        return
    shown = stored.shown()
    print(f"{_where(job, state)}:")
    print(f"  position:   {_position_text(stored.columns, stored.position)}")
    for name in ("run_id", "complete", "rows", "written_by", "updated_at"):
        print(f"  {name + ':':<11} {shown[name]}")
    if stored.position is not None and not _same_columns(stored.columns, job.columns):
        print(
            f"  note: stored for {', '.join(stored.columns)}, but the job orders by {', '.join(job.columns)}: "
            "its next run fails until pstt state set or pstt state reset"
        )


def set_position(job: Job, hook: PsttKafkaHook, state: StateTopic, to: str, timeout_s: float) -> None:
    position = parse_position(to, job.columns, state.read(job.key))
    record = JobState(columns=job.columns, position=position, written_by=WRITTEN_BY)
    _write(hook, state, job, record, timeout_s)
    print(f"{_where(job, state)}: position set to {_position_text(job.columns, position)}")
    if job.incremental:
        print("the next run reads the rows after it")
    else:
        print(
            "note: the job is not incremental (order_by): a position resumes only a retry of the run that wrote "
            "it, so the next run still reads every row"
        )


def reset(job: Job, hook: PsttKafkaHook, state: StateTopic, timeout_s: float) -> None:
    try:
        stored = state.read(job.key)
        before = _position_text(stored.columns, stored.position) if stored is not None else "nothing stored"
    except PsttError as err:  # an unreadable record is what reset is for: clear it anyway
        before = f"unreadable ({err})"
    _write(hook, state, job, None, timeout_s)
    print(f"{_where(job, state)}: position cleared (was: {before}); {job.next_start()}")


def _fail(action: str, message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message}, ensure_ascii=False))
    print(f"pstt state {action}: {message}", file=sys.stderr)
    return EXIT_FAILED


def main(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    as_json = bool(getattr(args, "json", False))
    try:
        job = _load(args.spec)
        if args.action != "show":
            _refuse_while_active(job, args.force)
        hook = _hook(job, args.timeout)
        state = StateTopic(hook, DEFAULT_STATE_TOPIC, timeout_s=args.timeout)
        if args.action == "show":
            show(job, state, as_json)
        elif args.action == "set":
            set_position(job, hook, state, args.to, args.timeout)
        else:
            reset(job, hook, state, args.timeout)
    except (StateCommandError, PsttError) as err:
        return _fail(args.action, str(err), as_json)
    except KafkaException as err:  # a request the broker refused or left unanswered (reading the state, say)
        from pstt_provider.hooks.kafka import kafka_reason  # Airflow: imported by now, with the hook

        return _fail(args.action, f"Kafka: {kafka_reason(err)}", as_json)
    return EXIT_OK
