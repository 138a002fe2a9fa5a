"""
An ordered read's position, followed batch by batch and committed every ``checkpoint_rows`` rows and at the end.

exactly_once: a checkpoint produces the position into the open transaction, commits it and begins the next (also
when the transaction has run half its timeout), so a retry resumes after it and no transaction outlives the
broker's limit. at_least_once: a checkpoint waits until every row so far is acknowledged, then writes the
position; a crash between the two repeats rows, never skips them. The end of a try records the final position
the same way, marked ``complete``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from pstt_provider.exceptions import JobStateMismatchError, OrderedReadError
from pstt_provider.job_state import JobState, StateTopic
from pstt_provider.ordered_read import Incremental, ReadPlan, position_reader
from pstt_provider.positions import Position, show_position
from pstt_provider.publisher import RowPublisher
from pstt_provider.streaming import ResultStream
from pstt_provider.transactions import ExactlyOnceSession

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PositionKeeper:
    """
    The position of job ``key`` in ``state``: an ``incremental`` job's carries over from run to run; a full-run
    job ordered by ``columns`` (``order_by``) keeps one only for a retry of the same run to resume from.
    """

    state: StateTopic
    key: str
    columns: tuple[str, ...]
    run_id: str
    publisher: RowPublisher
    session: ExactlyOnceSession | None
    every: int | None
    incremental: Incremental | None = None
    start: Position | None = field(default=None, init=False)
    """The position this try reads after; None: from ``initial``, or the first row."""
    run_rows: int = field(default=0, init=False)
    """Rows of this run that earlier tries committed (a resumed retry): the record counts the run's rows."""
    position: Position | None = field(default=None, init=False)
    committed: Position | None = field(default=None, init=False)
    """The position last made durable: where a retry would resume."""
    checkpoints: int = field(default=0, init=False)
    _committed_rows: int = field(default=0, init=False)
    _read: Callable[[Sequence[Any]], Position] | None = field(default=None, init=False)

    def load(self) -> ReadPlan:
        """
        Reads the stored position (under exactly_once after ``init_transactions`` fenced any earlier attempt, so
        none can still commit behind it) and returns how this try reads.
        """
        stored = self.state.read(self.key)
        if (
            stored is not None
            and stored.position is not None
            and [column.lower() for column in stored.columns] != [column.lower() for column in self.columns]
        ):
            raise JobStateMismatchError(
                f"the stored position of {self.key!r} in {self.state.name!r} is for {', '.join(stored.columns)}, "
                f"but the job now orders by {', '.join(self.columns)}: run pstt state set or pstt state reset"
            )
        resumed = stored is not None and stored.run_id == self.run_id and not stored.complete
        if self.incremental is not None or resumed:
            self.start = stored.position if stored is not None else None
        self.run_rows = stored.rows if stored is not None and resumed else 0
        self.position = self.committed = self.start
        if resumed:
            log.info(
                "Resuming run %s after its checkpoint at %s (%d rows committed)",
                self.run_id,
                self.shown_before,
                self.run_rows,
            )
        elif self.start is not None:
            log.info("Reading the rows after position %s", self.shown_before)
        if self.incremental is None:
            return ReadPlan(self.columns, after=self.start)
        return ReadPlan(
            self.columns,
            after=self.start,
            initial=self.incremental.initial,
            lag_seconds=self.incremental.lag_seconds,
            field="incremental",
        )

    def attach(self, result: ResultStream) -> None:
        """Finds the order columns in the result, before its first row is read."""
        self._read = position_reader(result.columns, self.columns, result.number_text)

    def after_batch(self, rows: int, last_row: Sequence[Any]) -> None:
        """The publisher's ``on_batch``: notes the position and commits it when a checkpoint is due."""
        if self._read is None:
            raise RuntimeError("PositionKeeper.attach was not called before the first batch")
        position = self._read(last_row)
        if any(value is None for value in position):
            raise OrderedReadError(
                "incremental" if self.incremental is not None else "order_by",
                f"row {rows} has a NULL in {', '.join(self.columns)}: an incremental or ordered read needs values "
                "in its order columns; filter the NULLs out or COALESCE them in the query",
            )
        self.position = position
        session = self.session
        if self.every is not None and (
            rows - self._committed_rows >= self.every or (session is not None and session.checkpoint_due)
        ):
            self._checkpoint(rows)
        elif session is not None:
            session.check(rows)

    def _record(self, rows: int, *, complete: bool) -> JobState:
        return JobState(
            columns=self.columns,
            position=self.position,
            run_id=self.run_id,
            complete=complete,
            rows=self.run_rows + rows,
            written_by="checkpoint" if not complete else "run",
        )

    def _produce(self, record: JobState) -> Callable[[Producer], None]:
        return lambda producer: self.state.produce(producer, self.key, record)

    def _checkpoint(self, rows: int) -> None:
        record = self._record(rows, complete=False)
        sender = self.publisher.sender
        if self.session is not None:
            self.session.checkpoint(
                rows, sender.tracker.produced, self.publisher.flush_timeout_s, self._produce(record)
            )
        else:
            self.publisher.finish()
            self.state.write(sender.producer, self.key, record, self.publisher.flush_timeout_s)
        self.committed = self.position
        self._committed_rows = rows
        self.checkpoints += 1
        log.info("Checkpoint %d: %d rows committed, position %s", self.checkpoints, rows, self.shown_after)

    def finish(self) -> None:
        """After the last row was acknowledged: the final position, with the run's marker under exactly_once."""
        rows = self.publisher.rows
        record = self._record(rows, complete=True)
        if self.session is not None:
            self.session.commit(
                rows, self.publisher.sender.tracker.acked, self.publisher.flush_timeout_s, self._produce(record)
            )
        else:
            self.state.write(self.publisher.sender.producer, self.key, record, self.publisher.flush_timeout_s)
        self.committed = self.position

    @property
    def shown_before(self) -> dict[str, Any] | None:
        return show_position(self.columns, self.start)

    @property
    def shown_after(self) -> dict[str, Any] | None:
        return show_position(self.columns, self.committed)
