"""
Exactly-once delivery for one task run: a Kafka transaction per attempt plus a run marker.

- ``transactional.id`` is a stable hash of dag_id/task_id/run_id/map_index, so every attempt of the same
  run shares it: ``init_transactions`` of a retry fences the previous attempt and aborts whatever it left
  open, and read_committed consumers never see the rows of a failed attempt.
- The last message of the transaction is a marker in a compacted topic (``pstt-run-markers``), keyed by
  the same id. The marker commits atomically with the rows, so "marker present" means "rows committed":
  a re-run of a committed run finds it and publishes nothing, unless forced.
- Markers are kept ``MARKER_RETENTION_MS`` (30 days); a re-run older than that publishes again.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import zlib
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pstt_provider.exceptions import RunMarkerError, TransactionTimeoutError

DEFAULT_MARKER_TOPIC = "pstt-run-markers"
MARKER_PARTITIONS = 8
MARKER_RETENTION_MS = 30 * 24 * 3600 * 1000
DEFAULT_TRANSACTION_TIMEOUT_MS = 900_000
"""The broker's default ``transaction.max.timeout.ms`` (15 min): the longest transaction it accepts."""
TIMEOUT_SAFETY = 0.9
"""Abort ourselves at 90 % of the transaction timeout, before the broker aborts it behind our back."""


def transactional_id(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    digest = hashlib.sha256(f"{dag_id}\0{task_id}\0{run_id}\0{map_index}".encode()).hexdigest()[:32]
    return f"pstt-{digest}"


def marker_partition(key: str, partitions: int) -> int:
    """Our own stable partitioning, so a lookup reads one partition instead of the whole topic."""
    return zlib.crc32(key.encode()) % partitions


def ensure_marker_topic(config: dict[str, Any], topic: str, timeout_s: float) -> int:
    """
    Creates the compacted marker topic when absent; returns its partition count.

    Absence is asked with DescribeTopics: a metadata request for the topic by name would make a broker with
    ``auto.create.topics.enable=true`` create it first with its defaults (one partition, deleted after 7 days,
    not compacted), and the create below would then find it existing.
    """
    admin = AdminClient(config)
    existing = _partition_count(admin, topic, timeout_s)
    if existing:
        return existing
    future = admin.create_topics(
        [
            NewTopic(
                topic,
                MARKER_PARTITIONS,
                replication_factor=-1,
                config={"cleanup.policy": "compact,delete", "retention.ms": str(MARKER_RETENTION_MS)},
            )
        ],
        operation_timeout=timeout_s,
    )[topic]
    try:
        future.result(timeout=timeout_s)
    except KafkaException as err:
        if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise RunMarkerError(f"cannot create run-marker topic {topic!r}: {err.args[0].str()}") from err
    for _ in range(int(timeout_s * 10)):
        created = admin.list_topics(topic=topic, timeout=timeout_s).topics.get(topic)
        if (
            created is not None
            and created.error is None
            and created.partitions
            and all(partition.leader >= 0 for partition in created.partitions.values())
        ):
            return len(created.partitions)
        time.sleep(0.1)
    raise RunMarkerError(f"run-marker topic {topic!r} did not become available within {timeout_s:.0f} s")


def _partition_count(admin: AdminClient, topic: str, timeout_s: float) -> int:
    """The topic's partitions, 0 when it does not exist, asked without making any broker create it."""
    future = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout_s)[topic]
    try:
        return len(future.result(timeout=timeout_s + 1).partitions)
    except KafkaException as err:
        if err.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return 0
        raise RunMarkerError(f"cannot look up run-marker topic {topic!r}: {err.args[0].str()}") from err
    except TimeoutError as err:
        raise RunMarkerError(f"looking up run-marker topic {topic!r} took longer than {timeout_s:.0f} s") from err


_LEADER_MOVING = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


def _watermarks(consumer: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """
    The partition's offsets, asked again while its leader is still being elected: right after the marker
    topic is created (or a broker restarted) the partition's metadata can name no leader, or a stale one.
    """
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as err:
            if err.args[0].code() not in _LEADER_MOVING or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def find_marker(config: dict[str, Any], topic: str, partitions: int, key: str, timeout_s: float) -> dict | None:
    """
    The committed marker for ``key`` (latest wins), read with isolation.level=read_committed.

    Messages are polled one at a time and reading stops at the end of the partition (EOF, or the high
    watermark read up front): a batched ``consume`` would wait out its whole timeout for a batch that never fills.
    A short ``fetch.wait.max.ms`` keeps the broker from holding the fetch that reports the EOF for 500 ms.
    """
    consumer = Consumer(
        {
            **config,
            "group.id": f"pstt-marker-check-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
            "auto.offset.reset": "earliest",
        }
    )
    partition = TopicPartition(topic, marker_partition(key, partitions))
    found: dict | None = None
    try:
        deadline = time.monotonic() + timeout_s
        low, high = _watermarks(consumer, partition, deadline)
        if high <= low:
            return None
        partition.offset = low
        consumer.assign([partition])
        wanted = key.encode()
        while (remaining := deadline - time.monotonic()) > 0:
            message = consumer.poll(remaining)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return found
                raise RunMarkerError(f"reading run markers from {topic!r}: {error.str()}")
            if message.key() == wanted:
                value = message.value()
                found = orjson.loads(value) if value else None
            if message.offset() >= high - 1:
                return found
        raise RunMarkerError(f"reading run markers from {topic!r} did not finish within {timeout_s:.0f} s")
    finally:
        consumer.close()


def produce_marker(producer: Producer, topic: str, partitions: int, key: str, marker: dict[str, Any]) -> None:
    producer.produce(topic, key=key, value=orjson.dumps(marker), partition=marker_partition(key, partitions))


class TransactionClock:
    """Tells the extraction loop when the open transaction is about to outlive ``transaction.timeout.ms``."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_s = timeout_ms / 1000.0
        self.started = time.monotonic()

    def check(self, rows: int) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed > self.timeout_s * TIMEOUT_SAFETY:
            raise TransactionTimeoutError(
                f"exactly_once: the extraction has run {elapsed:.1f} s ({rows} rows so far), too close to the "
                f"Kafka transaction timeout ({self.timeout_s:.0f} s, transaction.timeout.ms); the transaction "
                "was aborted, nothing was published. Raise transaction.timeout.ms in producer_config (the "
                "broker caps it at transaction.max.timeout.ms, 15 min by default), make the query return "
                "fewer rows per run, or use delivery='at_least_once'."
            )
