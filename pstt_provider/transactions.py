"""
Exactly-once delivery for one task run: a Kafka transaction per attempt plus a run marker (``ExactlyOnceSession``).

- ``transactional.id`` is a stable hash of dag_id/task_id/run_id/map_index, so every attempt of the same
  run shares it: ``init_transactions`` of a retry fences the previous attempt and aborts whatever it left
  open, and read_committed consumers never see the rows of a failed attempt.
- The last message of the transaction is a marker in a compacted topic (``pstt-run-markers``), keyed by
  the same id. The marker commits atomically with the rows, so "marker present" means "rows committed":
  a re-run of a committed run finds it and publishes nothing, unless forced.
- Markers are kept ``MARKER_RETENTION_MS`` (30 days); a re-run older than that publishes again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import uuid
import zlib
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pstt_provider.exceptions import RunMarkerError, TransactionTimeoutError

if TYPE_CHECKING:
    from pstt_provider.hooks.kafka import PsttKafkaHook

log = logging.getLogger(__name__)

DEFAULT_MARKER_TOPIC = "pstt-run-markers"
MARKER_PARTITIONS = 8
MARKER_RETENTION_MS = 30 * 24 * 3600 * 1000
DEFAULT_TRANSACTION_TIMEOUT_MS = 900_000
"""The broker's default ``transaction.max.timeout.ms`` (15 min): the longest transaction it accepts."""
TIMEOUT_SAFETY = 0.9
"""Abort ourselves at 90 % of the transaction timeout, before the broker aborts it behind our back."""


def transaction_overrides(
    overrides: dict[str, Any], txn_id: str, *, message_timeout_ms: int, message_timeout_explicit: bool
) -> dict[str, Any]:
    """
    Producer overrides with the transaction settings: ``transactional.id``, ``transaction.timeout.ms`` and, unless
    chosen explicitly, a ``message.timeout.ms`` no longer than the transaction (librdkafka refuses a longer one).
    """
    overrides = {"transactional.id": txn_id, "transaction.timeout.ms": DEFAULT_TRANSACTION_TIMEOUT_MS, **overrides}
    if not message_timeout_explicit:
        overrides["message.timeout.ms"] = min(message_timeout_ms, int(overrides["transaction.timeout.ms"]))
    return overrides


def transactional_id(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    digest = hashlib.sha256(f"{dag_id}\0{task_id}\0{run_id}\0{map_index}".encode()).hexdigest()[:32]
    return f"pstt-{digest}"


def marker_partition(key: str, partitions: int) -> int:
    """Our own stable partitioning, so a lookup reads one partition instead of the whole topic."""
    return zlib.crc32(key.encode()) % partitions


def ensure_marker_topic(admin: AdminClient, topic: str, timeout_s: float) -> int:
    """
    Creates the compacted marker topic when absent; returns its partition count.

    Absence is asked with DescribeTopics: a metadata request for the topic by name would make a broker with
    ``auto.create.topics.enable=true`` create it first with its defaults (one partition, deleted after 7 days,
    not compacted), and the create below would then find it existing.
    """
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


MARKER_READER_CONFIG: dict[str, Any] = {
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "fetch.wait.max.ms": 10,
    "auto.offset.reset": "earliest",
}
"""The marker consumer's settings (plus a group.id of its own): see ``find_marker``."""


def marker_reader_config() -> dict[str, Any]:
    return {**MARKER_READER_CONFIG, "group.id": f"pstt-marker-check-{uuid.uuid4().hex}"}


def find_marker(consumer: Consumer, topic: str, partitions: int, key: str, timeout_s: float) -> dict | None:
    """
    The committed marker for ``key`` (latest wins), read by ``consumer`` (made with ``marker_reader_config``, with
    isolation.level=read_committed), which is closed afterwards.

    Messages are polled one at a time and reading stops at the end of the partition (EOF, or the high
    watermark read up front): a batched ``consume`` would wait out its whole timeout for a batch that never fills.
    A short ``fetch.wait.max.ms`` keeps the broker from holding the fetch that reports the EOF for 500 ms.
    """
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
            offset = message.offset()  # None only for a message that is an error, handled above
            if offset is not None and offset >= high - 1:
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


class ExactlyOnceSession:
    """
    One attempt's Kafka transaction around the rows it publishes, as a context manager.

    Entering fences any earlier attempt (``init_transactions``) and looks for the run's marker: when the run already
    committed (and ``force`` is off) ``already_published`` holds the marker and nothing is begun; otherwise the
    transaction is open (``publishing``). ``check`` stops an extraction about to outlive the transaction,
    ``commit`` adds the marker (``run``: the run's identity, with the counts and the time) and commits; leaving on
    an exception aborts what is open. The admin client and the marker consumer come from the hook, so they log and
    authenticate like every other client of the run.
    """

    def __init__(
        self,
        hook: PsttKafkaHook,
        producer: Producer,
        *,
        txn_id: str,
        run: Mapping[str, Any],
        marker_topic: str,
        transaction_timeout_ms: int,
        timeout_s: float,
        force: bool = False,
    ) -> None:
        self.hook = hook
        self.producer = producer
        self.run = dict(run)
        self.txn_id = txn_id
        self.marker_topic = marker_topic
        self.transaction_timeout_ms = transaction_timeout_ms
        self.timeout_s = timeout_s
        self.force = force
        self.already_published: dict[str, Any] | None = None
        self._partitions = 0
        self._clock: TransactionClock | None = None

    @property
    def publishing(self) -> bool:
        """A transaction is open: the rows go into it."""
        return self._clock is not None

    def __enter__(self) -> ExactlyOnceSession:
        self.producer.init_transactions(self.timeout_s)
        self._partitions = ensure_marker_topic(self.hook.get_admin_client(), self.marker_topic, self.timeout_s)
        consumer = self.hook.get_consumer(marker_reader_config())
        marker = find_marker(consumer, self.marker_topic, self._partitions, self.txn_id, self.timeout_s)
        if marker is not None and not self.force:
            log.warning(
                "Run %s already published %s rows to %s at %s (exactly_once marker in %s); publishing nothing. "
                "Set force=True to publish again.",
                self.run["run_id"],
                marker.get("rows"),
                marker.get("topic"),
                marker.get("committed_at"),
                self.marker_topic,
            )
            self.already_published = marker
            return self
        self.producer.begin_transaction()
        self._clock = TransactionClock(self.transaction_timeout_ms)
        return self

    def check(self, rows: int) -> None:
        if self._clock is not None:
            self._clock.check(rows)

    def commit(self, rows: int, messages: int, timeout_s: float) -> None:
        """Commits the ``rows`` read, as ``messages``, with the run's marker as the transaction's last message."""
        self.check(rows)
        marker = {**self.run, "rows": rows, "messages": messages, "committed_at": dt.datetime.now(dt.UTC).isoformat()}
        produce_marker(self.producer, self.marker_topic, self._partitions, self.txn_id, marker)
        self.producer.commit_transaction(timeout_s)
        self._clock = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc is None or self._clock is None:
            return
        self._clock = None
        try:
            self.producer.abort_transaction(self.timeout_s)
        except KafkaException as err:
            # The next attempt's init_transactions fences and aborts it anyway; the original error matters more.
            log.warning("Aborting the Kafka transaction failed (%s); the retry will fence it", err)
