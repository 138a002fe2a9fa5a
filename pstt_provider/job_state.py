"""
Where each job has got to: its position, in a compacted topic (``pstt-state``) on the job's own Kafka connection.

The record of a job (key ``dag_id/task_id``, plus ``/map_index`` for a mapped task) says which order columns the
position is for, their values in the last row delivered, and the run that wrote it. Under exactly_once it is
produced inside the transaction that commits the rows up to it, so a read_committed reader sees rows and position
together or not at all; under at_least_once it is written once those rows were acknowledged, so a crash repeats
rows and never skips any. Kept in Kafka and not in Airflow's database: a task cannot write that database, and a
position beside the rows cannot disagree with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Producer

from pstt_provider.exceptions import JobStateError
from pstt_provider.keyed_topic import KeyedTopic, reader_config
from pstt_provider.positions import Position, PositionError, decode_position, encode_position, show_position

if TYPE_CHECKING:
    from pstt_provider.hooks.kafka import PsttKafkaHook

DEFAULT_STATE_TOPIC = "pstt-state"
STATE_PARTITIONS = 8
RECORD_VERSION = 1
RESET_HINT = "pstt state reset clears it"


def state_key(dag_id: str, task_id: str, map_index: int = -1) -> str:
    """A job's key in the state topic: one per task, one per mapped task instance."""
    return f"{dag_id}/{task_id}" + (f"/{map_index}" if map_index >= 0 else "")


@dataclass(frozen=True)
class JobState:
    """
    One job's record. ``position`` is after the last row delivered, for ``columns``; ``complete`` is False for a
    checkpoint in the middle of run ``run_id`` (a retry of that run resumes there; a full-run job's next run starts
    from its first row again); ``rows`` counts the rows of that run up to the position.
    """

    columns: tuple[str, ...]
    position: Position | None
    run_id: str | None = None
    complete: bool = True
    rows: int = 0
    written_by: str = "run"
    updated_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "columns": list(self.columns),
            "position": encode_position(self.position) if self.position is not None else None,
            "run_id": self.run_id,
            "complete": self.complete,
            "rows": self.rows,
            "written_by": self.written_by,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], key: str) -> JobState:
        try:
            position = record.get("position")
            return cls(
                columns=tuple(str(column) for column in record["columns"]),
                position=decode_position(position) if position is not None else None,
                run_id=record.get("run_id"),
                complete=bool(record.get("complete", True)),
                rows=int(record.get("rows") or 0),
                written_by=str(record.get("written_by") or ""),
                updated_at=str(record.get("updated_at") or ""),
            )
        except (KeyError, TypeError, ValueError, PositionError) as err:
            raise JobStateError(f"the state record of {key!r} cannot be read ({err}); {RESET_HINT}") from err

    def shown(self) -> dict[str, Any]:
        """As ``pstt state show`` and the run summary print it."""
        return {
            "position": show_position(self.columns, self.position),
            "run_id": self.run_id,
            "complete": self.complete,
            "rows": self.rows,
            "written_by": self.written_by,
            "updated_at": self.updated_at,
        }


class StateTopic:
    """The state topic of one Kafka connection: created compacted (never deleted by age) when absent."""

    def __init__(self, hook: PsttKafkaHook, name: str = DEFAULT_STATE_TOPIC, *, timeout_s: float = 30.0) -> None:
        self.hook = hook
        self.topic = KeyedTopic(
            name,
            "state",
            JobStateError,
            partitions=STATE_PARTITIONS,
            config={"cleanup.policy": "compact"},
            remedy=RESET_HINT,
        )
        self.timeout_s = timeout_s
        self._partitions = 0

    @property
    def name(self) -> str:
        return self.topic.name

    def _partition_count(self) -> int:
        """The topic's partitions, creating it first when absent: for writing."""
        if not self._partitions:
            self._partitions = self.topic.ensure(self.hook.get_admin_client(), self.timeout_s)
        return self._partitions

    def read(self, key: str) -> JobState | None:
        """The job's committed record; None when it has none (never ran, or reset). Creates nothing."""
        admin = self.hook.get_admin_client()
        partitions = self._partitions or self.topic.partition_count(admin, self.timeout_s)
        if not partitions:
            return None
        record = self.topic.latest(admin, self.hook.get_consumer(reader_config()), partitions, key, self.timeout_s)
        return JobState.from_record(record, key) if record is not None else None

    def produce(self, producer: Producer, key: str, state: JobState | None) -> None:
        """Queues the record (None: a reset) on ``producer``: inside its open transaction, if it has one."""
        self.topic.produce(producer, self._partition_count(), key, state.to_record() if state is not None else None)

    def write(self, producer: Producer, key: str, state: JobState | None, timeout_s: float) -> None:
        """Writes the record through ``producer`` (not transactional) and waits for the broker to acknowledge it."""
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                failures.append(error.str())

        record = state.to_record() if state is not None else None
        self.topic.produce(producer, self._partition_count(), key, record, on_delivery=on_delivery)
        left = producer.flush(timeout_s)
        if failures or left:
            reason = failures[0] if failures else f"not acknowledged within {timeout_s:.0f} s"
            raise JobStateError(f"writing the position of {key!r} to {self.name!r} failed: {reason}")
