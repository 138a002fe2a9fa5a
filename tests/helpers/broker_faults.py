"""
Broker faults in the middle of a run: a source that holds its query at one row until the fault has happened, the
thread that stops (and restarts) a private broker, and the thread that runs any fault (a cluster node crashed,
a rolling restart) once the topic holds so many messages.

The source is a PostgreSQL table of numbered keys read through a slowed query that also waits, at ``Gate.at_row``,
for an advisory lock the fault thread holds until the broker is down: so the fault lands while the task still has
rows to produce, however fast or slow the machine is.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from helpers.kafka import PrivateBroker

QUIET = logging.getLogger("tests.broker_faults.watcher")
"""The watcher's librdkafka logger: its lines must not count among the task's (tests count those)."""
QUIET.setLevel(logging.CRITICAL)
QUIET.propagate = False


@contextmanager
def numbered_table(postgres: dict, prefix: str, rows: int, pad: int = 0) -> Iterator[str]:
    """``rows`` rows ``id``, ``code`` (``K000001``... in insertion order, read without ORDER BY so it streams)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    padding = f", repeat('x', {pad}) AS pad" if pad else ""
    with psycopg.connect(**postgres, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} AS SELECT g AS id, 'K' || lpad(g::text, 6, '0') AS code{padding} "
            f"FROM generate_series(1, {rows}) g"
        )
        yield name
        conn.execute(f"DROP TABLE {name}")


def numbered_keys(rows: int) -> set[bytes]:
    return {f"K{n:06d}".encode() for n in range(1, rows + 1)}


class Gate:
    """An advisory lock held in a session of its own: the slowed query stops at ``at_row`` until ``open``."""

    def __init__(self, postgres: dict, at_row: int) -> None:
        self.at_row = at_row
        self.key = uuid.uuid4().int % 2**62
        self._conn = psycopg.connect(**postgres, autocommit=True)
        self._conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))

    def open(self) -> None:
        if not self._conn.closed:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._conn.close()


def slowed_query(table: str, columns: str, gate: Gate, pause_every: int = 500, pause_s: float = 0.05) -> str:
    """
    Streams ``table`` with a ``pause_s`` sleep every ``pause_every`` rows, evaluated as the cursor advances, and
    waits at row ``gate.at_row`` until the gate opens (CASE: evaluated for that row only, in that order).
    """
    return (
        f"SELECT {columns} FROM {table} WHERE (id % {pause_every} <> 0 OR pg_sleep({pause_s})::text = '') "
        f"AND CASE WHEN id = {gate.at_row} THEN pg_advisory_xact_lock_shared({gate.key})::text = '' ELSE true END"
    )


class Watermarks:
    """
    High watermarks (open transactions included) through one consumer. It keeps asking the leader it first found
    until its next metadata refresh (minutes), so a wait across a leader change needs a new one per look.
    """

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"watch-{uuid.uuid4().hex}",
                "isolation.level": "read_uncommitted",  # the high watermark, open transactions included
                "logger": QUIET,
            }
        )

    def __enter__(self) -> Watermarks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._consumer.close()

    def partitions(self, topic: str) -> list[int]:
        return list(self._consumer.list_topics(topic, timeout=30).topics[topic].partitions)

    def high(self, topic: str, partition: int) -> int:
        """The partition's end; -1 while it has no leader to ask."""
        try:
            return self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)[1]
        except KafkaException:
            return -1


def wait_for_messages(bootstrap: str, topic: str, count: int, timeout_s: float = 120.0) -> None:
    """Until ``topic``'s partitions hold ``count`` messages together."""
    with Watermarks(bootstrap) as watermarks:
        partitions = watermarks.partitions(topic)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(max(watermarks.high(topic, partition), 0) for partition in partitions) >= count:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{topic} never reached {count} messages")


class FaultAt(threading.Thread):
    """
    Once ``topic`` holds ``after`` messages, runs ``fault`` (crash a node, restart them all...) and then opens
    ``gate`` so the query reads on: the fault lands while rows are being produced, and before the last of them.
    """

    def __init__(self, bootstrap: str, topic: str, after: int, gate: Gate, fault: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.after = after
        self.gate = gate
        self.fault = fault
        self.started_at: float | None = None
        self.done_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            wait_for_messages(self.bootstrap, self.topic, self.after)
            self.started_at = time.monotonic()
            self.fault()
            self.done_at = time.monotonic()
        except BaseException as err:
            self.error = err
        finally:
            self.gate.open()

    def result(self) -> None:
        self.join(600)
        assert not self.is_alive(), "the fault thread did not finish"
        if self.error is not None:
            raise self.error


class BrokerFault(threading.Thread):
    """
    Once ``topic`` holds ``after`` messages, stops the broker, opens ``gate`` so the query reads on, and, unless
    ``restart_after_s`` is None, starts the broker again that many seconds later.
    """

    def __init__(
        self, broker: PrivateBroker, topic: str, after: int, gate: Gate, *, restart_after_s: float | None
    ) -> None:
        super().__init__(daemon=True)
        self.broker = broker
        self.topic = topic
        self.after = after
        self.gate = gate
        self.restart_after_s = restart_after_s
        self.stopping_at: float | None = None
        self.stopped_at: float | None = None
        self.restarted_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            wait_for_messages(self.broker.bootstrap, self.topic, self.after)
            self.stopping_at = time.monotonic()
            self.broker.stop()
            self.stopped_at = time.monotonic()
            self.gate.open()
            if self.restart_after_s is not None:
                time.sleep(self.restart_after_s)
                self.broker.start()
                self.restarted_at = time.monotonic()
        except BaseException as err:
            self.error = err
        finally:
            self.gate.open()

    def result(self) -> None:
        self.join(180)
        assert not self.is_alive(), "the broker fault thread did not finish"
        if self.error is not None:
            raise self.error
