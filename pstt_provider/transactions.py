"""
Exactly-once delivery for one task run: a Kafka transaction per attempt (one per checkpoint with
``checkpoint_rows``) plus a run marker (``ExactlyOnceSession``).

- ``transactional.id`` is a stable hash of dag_id/task_id/run_id/map_index, so every attempt of the same
  run shares it: ``init_transactions`` of a retry fences the previous attempt and aborts whatever it left
  open, and read_committed consumers never see the rows of a failed attempt.
- The last message of the transaction is a marker in a compacted topic (``pstt-run-markers``), keyed by
  the same id. The marker commits atomically with the rows, so "marker present" means "rows committed":
  a re-run of a committed run finds it and publishes nothing, unless forced.
- Markers are kept ``MARKER_RETENTION_MS`` (30 days); a re-run older than that publishes again.
- A checkpoint commits the rows so far with the job's position (``pstt_provider.job_state``) and begins the next
  transaction, so a retry resumes after it and no transaction has to outlive ``transaction.max.timeout.ms``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from pstt_provider.exceptions import KafkaConfigurationError, RunMarkerError, TransactionTimeoutError
from pstt_provider.keyed_topic import KeyedTopic, reader_config

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
CHECKPOINT_BEFORE = 0.5
"""With checkpoints, commit early once a transaction has run half its timeout, whatever the rows since the last."""
TRANSACTION_MAX_SETTING = "transaction.max.timeout.ms"


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


def marker_topic_of(name: str) -> KeyedTopic:
    """The compacted topic of run markers, kept ``MARKER_RETENTION_MS``."""
    return KeyedTopic(
        name,
        "run-marker",
        RunMarkerError,
        partitions=MARKER_PARTITIONS,
        config={"cleanup.policy": "compact,delete", "retention.ms": str(MARKER_RETENTION_MS)},
    )


def broker_transaction_max_ms(admin: AdminClient, timeout_s: float) -> int | None:
    """
    The broker's ``transaction.max.timeout.ms``, the longest transaction it accepts; None when it cannot be read
    (the connection's principal may lack DescribeConfigs): then ``init_transactions`` is the check.
    """
    try:
        brokers = admin.list_topics(timeout=timeout_s).brokers
        resource = ConfigResource(ConfigResource.Type.BROKER, str(min(brokers)))
        configs = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(timeout=timeout_s)
        return int(configs[TRANSACTION_MAX_SETTING].value)
    except (KafkaException, KeyError, TypeError, ValueError, TimeoutError) as err:
        log.info("Could not read the broker's %s (%s)", TRANSACTION_MAX_SETTING, err)
        return None


def fit_transaction_timeout(overrides: dict[str, Any], explicit: bool, broker_max_ms: int | None) -> dict[str, Any]:
    """
    ``transaction.timeout.ms`` no longer than the broker accepts: the default is lowered to the broker's limit, a
    value chosen in producer_config above it is refused, naming both.
    """
    chosen = int(overrides["transaction.timeout.ms"])
    if broker_max_ms is None or chosen <= broker_max_ms:
        return overrides
    if explicit:
        raise KafkaConfigurationError(
            f"transaction.timeout.ms={chosen} (set in producer_config or the Kafka connection's extra) is above the "
            f"broker's {TRANSACTION_MAX_SETTING} ({broker_max_ms}): lower it, or raise the broker's limit"
        )
    fitted = {**overrides, "transaction.timeout.ms": broker_max_ms}
    if int(fitted.get("message.timeout.ms", 0)) > broker_max_ms:
        fitted["message.timeout.ms"] = broker_max_ms
    return fitted


class TransactionClock:
    """Tells the extraction loop when the open transaction is about to outlive ``transaction.timeout.ms``."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_s = timeout_ms / 1000.0
        self.started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def check(self, rows: int) -> None:
        elapsed = self.elapsed_s
        if elapsed > self.timeout_s * TIMEOUT_SAFETY:
            raise TransactionTimeoutError(
                f"exactly_once: the transaction has been open {elapsed:.1f} s ({rows} rows so far), too close to "
                f"the Kafka transaction timeout ({self.timeout_s:.0f} s, transaction.timeout.ms); it was aborted, "
                "nothing of it was published. Set checkpoint_rows (with incremental or order_by) to commit every N "
                "rows, raise transaction.timeout.ms in producer_config (the broker caps it at "
                f"{TRANSACTION_MAX_SETTING}, 15 min by default), make the query return fewer rows per run, or use "
                "delivery='at_least_once'."
            )


Extra = Callable[[Producer], None]
"""Produces what must commit with the rows (a job's position) into the open transaction."""


class ExactlyOnceSession:
    """
    One attempt's Kafka transactions around the rows it publishes, as a context manager.

    Entering fences any earlier attempt (``init_transactions``) and looks for the run's marker: when the run already
    committed (and ``force`` is off) ``already_published`` holds the marker and nothing is begun; otherwise a
    transaction is open (``publishing``). ``check`` stops an extraction about to outlive its transaction;
    ``checkpoint`` commits what is open (with the job's position) and begins the next; ``commit`` adds the marker
    (``run``: the run's identity, with the counts and the time) and commits the last. Leaving on an exception aborts
    what is open; what earlier checkpoints committed stays (``committed_messages``). The admin client and the marker
    consumer come from the hook, so they log and authenticate like every other client of the run.
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
        self.markers = marker_topic_of(marker_topic)
        self.transaction_timeout_ms = transaction_timeout_ms
        self.timeout_s = timeout_s
        self.force = force
        self.already_published: dict[str, Any] | None = None
        self.committed_messages = 0
        """Messages of this attempt already committed by checkpoints: visible whatever happens next."""
        self.checkpoints = 0
        self._partitions = 0
        self._clock: TransactionClock | None = None

    @property
    def publishing(self) -> bool:
        """A transaction is open: the rows go into it."""
        return self._clock is not None

    def __enter__(self) -> ExactlyOnceSession:
        self.producer.init_transactions(self.timeout_s)
        admin = self.hook.get_admin_client()
        self._partitions = self.markers.ensure(admin, self.timeout_s)
        consumer = self.hook.get_consumer(reader_config())
        marker = self.markers.latest(admin, consumer, self._partitions, self.txn_id, self.timeout_s)
        if marker is not None and not self.force:
            log.warning(
                "Run %s already published %s rows to %s at %s (exactly_once marker in %s); publishing nothing. "
                "Set force=True to publish again.",
                self.run["run_id"],
                marker.get("rows"),
                marker.get("topic"),
                marker.get("committed_at"),
                self.markers.name,
            )
            self.already_published = marker
            return self
        self._begin()
        return self

    def _begin(self) -> None:
        self.producer.begin_transaction()
        self._clock = TransactionClock(self.transaction_timeout_ms)

    def check(self, rows: int) -> None:
        if self._clock is not None:
            self._clock.check(rows)

    @property
    def checkpoint_due(self) -> bool:
        """The open transaction has run long enough that a job with checkpoints should commit it now."""
        return self._clock is not None and self._clock.elapsed_s > self._clock.timeout_s * CHECKPOINT_BEFORE

    def checkpoint(self, rows: int, messages: int, timeout_s: float, extra: Extra) -> None:
        """Commits the open transaction with what ``extra`` produces, and begins the next one."""
        self.check(rows)
        extra(self.producer)
        self.producer.commit_transaction(timeout_s)
        self.committed_messages = messages
        self.checkpoints += 1
        self._begin()

    def commit(self, rows: int, messages: int, timeout_s: float, extra: Extra | None = None) -> None:
        """Commits the ``rows`` read, as ``messages``, with the run's marker as the transaction's last message."""
        self.check(rows)
        if extra is not None:
            extra(self.producer)
        marker = {**self.run, "rows": rows, "messages": messages, "committed_at": dt.datetime.now(dt.UTC).isoformat()}
        self.markers.produce(self.producer, self._partitions, self.txn_id, marker)
        self.producer.commit_transaction(timeout_s)
        self.committed_messages = messages
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
