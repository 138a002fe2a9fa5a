"""
A compacted topic of small JSON records, the latest per key: exactly_once's run markers and the jobs' positions.

Each key has a partition of its own choosing (a stable hash, ``partition``), so reading one key reads one
partition, not the topic. Records are read with ``isolation.level=read_committed``: a record produced inside a
Kafka transaction counts only once that transaction committed, which is what ties it to the rows it was committed
with. A record of ``None`` (a tombstone) reads as no record.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from pstt_provider.exceptions import PsttError

READER_CONFIG: dict[str, Any] = {
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "fetch.wait.max.ms": 10,
    "auto.offset.reset": "earliest",
}
"""The reading consumer's settings (plus a group.id of its own): see ``KeyedTopic.latest``."""

QUEUE_FULL_WAIT_S = 0.1
POLL_S = 0.2
"""How often a read that reached the end of what it may read checks whether an open transaction has ended."""
_LEADER_MOVING = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


def reader_config() -> dict[str, Any]:
    return {**READER_CONFIG, "group.id": f"pstt-keyed-read-{uuid.uuid4().hex}"}


@dataclass(frozen=True)
class KeyedTopic:
    """
    ``name`` holds records of ``what`` (for messages), is created with ``partitions`` and ``config`` when absent,
    and every failure to create or read it raises ``error``.
    """

    name: str
    what: str
    error: type[PsttError]
    partitions: int = 8
    config: Mapping[str, str] = field(default_factory=dict)
    remedy: str = ""
    """What clears a record that cannot be read, for the message."""

    def ensure(self, admin: AdminClient, timeout_s: float) -> int:
        """
        Creates the topic when absent; returns its partition count.

        Absence is asked with DescribeTopics: a metadata request for the topic by name would make a broker with
        ``auto.create.topics.enable=true`` create it first with its defaults (one partition, deleted after 7 days,
        not compacted), and the create below would then find it existing.
        """
        existing = self.partition_count(admin, timeout_s)
        if existing:
            return existing
        topic = NewTopic(self.name, self.partitions, replication_factor=-1, config=dict(self.config))
        future = admin.create_topics([topic], operation_timeout=timeout_s)[self.name]
        try:
            future.result(timeout=timeout_s)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise self.error(f"cannot create {self.what} topic {self.name!r}: {err.args[0].str()}") from err
        for _ in range(int(timeout_s * 10)):
            created = admin.list_topics(topic=self.name, timeout=timeout_s).topics.get(self.name)
            if (
                created is not None
                and created.error is None
                and created.partitions
                and all(partition.leader >= 0 for partition in created.partitions.values())
            ):
                return len(created.partitions)
            time.sleep(0.1)
        raise self.error(f"{self.what} topic {self.name!r} did not become available within {timeout_s:.0f} s")

    def partition_count(self, admin: AdminClient, timeout_s: float) -> int:
        """The topic's partitions, 0 when it does not exist, asked without making any broker create it."""
        future = admin.describe_topics(TopicCollection([self.name]), request_timeout=timeout_s)[self.name]
        try:
            return len(future.result(timeout=timeout_s + 1).partitions)
        except KafkaException as err:
            if err.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return 0
            raise self.error(f"cannot look up {self.what} topic {self.name!r}: {err.args[0].str()}") from err
        except TimeoutError as err:
            raise self.error(f"looking up {self.what} topic {self.name!r} took longer than {timeout_s:.0f} s") from err

    @staticmethod
    def partition(key: str, partitions: int) -> int:
        """Our own stable partitioning, so a lookup reads one partition instead of the whole topic."""
        return zlib.crc32(key.encode()) % partitions

    def latest(
        self, admin: AdminClient, consumer: Consumer, partitions: int, key: str, timeout_s: float
    ) -> dict[str, Any] | None:
        """
        The latest committed record for ``key``, read by ``consumer`` (made with ``reader_config``), which is closed
        afterwards.

        Reading stops once everything produced to the partition before the call has been passed: its end as a
        read_uncommitted reader sees it. A read_committed reader cannot read past a transaction still open in the
        partition (another job committing right now, or killed before it could), and a record committed after that
        transaction began would be missed: so the read waits for the transaction to end, and raises ``error`` (the
        task is retried) when it does not end within ``timeout_s``, rather than return an older record. Messages
        are polled one at a time, with a short ``fetch.wait.max.ms``: a batched ``consume`` would wait out its whole
        timeout for a batch that never fills.
        """
        partition = TopicPartition(self.name, self.partition(key, partitions))
        deadline = time.monotonic() + timeout_s
        try:
            end = self._end(admin, partition, deadline)
            if end <= 0:
                return None
            consumer.assign([TopicPartition(self.name, partition.partition, OFFSET_BEGINNING)])
            wanted = key.encode()
            value: bytes | None = None
            while (remaining := deadline - time.monotonic()) > 0:
                message = consumer.poll(min(remaining, POLL_S))
                error = message.error() if message is not None else None
                if message is None or (error is not None and error.code() == KafkaError._PARTITION_EOF):
                    if consumer.position([partition])[0].offset >= end:
                        return self._decode(value, key)
                    continue
                if error is not None:
                    raise self.error(f"reading {self.what} records from {self.name!r}: {error.str()}")
                if message.key() == wanted:
                    value = message.value()
                offset = message.offset()
                if offset is not None and offset >= end - 1:
                    return self._decode(value, key)
            raise self.error(
                f"reading {self.what} records from {self.name!r}: partition {partition.partition} is held by a "
                f"Kafka transaction still open after {timeout_s:.0f} s (a producer killed before it committed holds "
                "it until its transaction.timeout.ms); the task is retried"
            )
        finally:
            consumer.close()

    def _end(self, admin: AdminClient, partition: TopicPartition, deadline: float) -> int:
        """
        Where the partition ends for a read_uncommitted reader, open transactions included; asked again while its
        leader is still being elected, as right after the topic is created or a broker restarted.
        """
        while True:
            request = {partition: OffsetSpec.latest()}
            timeout = max(deadline - time.monotonic(), 0.1)
            future = admin.list_offsets(
                request, isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=timeout
            )
            try:
                return int(future[partition].result(timeout=timeout + 1).offset)
            except KafkaException as err:
                if err.args[0].code() not in _LEADER_MOVING or time.monotonic() >= deadline:
                    raise self.error(
                        f"cannot look up the end of {self.what} topic {self.name!r}: {err.args[0].str()}"
                    ) from err
                time.sleep(0.2)
            except TimeoutError as err:
                raise self.error(f"looking up the end of {self.what} topic {self.name!r} took too long") from err

    def _decode(self, value: bytes | None, key: str) -> dict[str, Any] | None:
        """The last record read for ``key`` (None, or empty: a tombstone); only that one is decoded."""
        if not value:
            return None
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as err:
            raise self.unreadable(key, f"not JSON: {err}") from None
        if not isinstance(record, dict):
            raise self.unreadable(key, "not a JSON object")
        return record

    def unreadable(self, key: str, reason: str) -> PsttError:
        remedy = f"; {self.remedy}" if self.remedy else ""
        return self.error(f"the {self.what} record of {key!r} in {self.name!r} cannot be read ({reason}){remedy}")

    def produce(
        self,
        producer: Producer,
        partitions: int,
        key: str,
        record: Mapping[str, Any] | None,
        on_delivery: Callable[[KafkaError | None, Any], None] | None = None,
    ) -> None:
        """
        Queues ``record`` (None: a tombstone) for ``key`` on ``producer``, inside its transaction if one is open.
        The producer may still hold a full queue of rows (a checkpoint comes right after them): then it waits for
        room, as the rows do.
        """
        value = orjson.dumps(record) if record is not None else None
        kwargs: dict[str, Any] = {"on_delivery": on_delivery} if on_delivery is not None else {}
        while True:
            try:
                producer.produce(self.name, key=key, value=value, partition=self.partition(key, partitions), **kwargs)
                return
            except BufferError:
                producer.poll(QUEUE_FULL_WAIT_S)
