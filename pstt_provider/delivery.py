"""
Bulk delivery to Kafka with an exact account of what the broker acknowledged.

The per-message path is one ``produce`` call: no flush per message or batch (that serialises the pipeline on
the network round trip) and no delivery report per acknowledged message (a Python callback each, a third of
the per-row time). The producer reports failures only; acknowledgements are counted as produced - failed -
still queued, and a run ends with one flush that leaves nothing queued or counts what is left as failed.
A caller decides success from the tracker, never from the absence of an exception.

The run's ``rows`` are the rows that became messages or dead letters (``DeliveryTracker.rows``) plus the skipped
ones. A row that stops the run before it becomes a message (too large without a dead-letter topic, a NULL key
under ``fail``) is named by the error, not counted, so after a failure the counts still say exactly what a
consumer reads back.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pstt_provider.exceptions import DeliveryError, DeliveryNotAuthorizedError, MessageTooLargeError
from pstt_provider.latency import LatencyHistogram

MAX_ERRORS_KEPT = 5
CHECKPOINT_EVERY = 256
"""Serve failure reports and note acknowledgements every this many messages: often enough to keep latency
resolution near a millisecond at full speed, rarely enough to cost nothing per row."""
QUEUE_FULL_WAIT_S = 0.1
FLUSH_STEP_S = 0.01
"""The final flush waits in steps this long, so the messages it waits for get their latency to 10 ms."""
FAILURE_ONLY_REPORTS = {"delivery.report.only.error": True}
ANY_PARTITION = -1
NOW = 0
"""``produce``'s positional ``partition`` and ``timestamp`` defaults: the partitioner picks, the producer stamps.
Headers follow them (``produce(topic, value, key, ANY_PARTITION, None, None, NOW, headers)``, the two Nones the
callbacks, so the producer's own reports failures), because keyword arguments cost a dict per message."""
DEAD_LETTER_ERROR_HEADER = "pstt-error"
DEAD_LETTER_TOPIC_HEADER = "pstt-source-topic"
DEAD_LETTER_SIZE_HEADER = "pstt-value-bytes"

log = logging.getLogger(__name__)


_SIZE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
_AUTHORIZATION_ERRORS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)


def is_size_error(error: KafkaError) -> bool:
    return error.code() in _SIZE_ERRORS


@dataclass
class DeliveryTracker:
    """The account of one run: main-topic messages produced, acknowledged and failed, and the dead letters."""

    produced: int = 0
    acked: int = 0
    failed: int = 0
    diverted: int = 0
    """Rows handed to the dead-letter topic; each ends up in ``dead_lettered`` or ``dead_letter_failed``."""
    dead_lettered: int = 0
    dead_letter_failed: int = 0
    bytes: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: list[str] = field(default_factory=list)
    refused: str | None = None
    """The first authorization refusal among the failures: then no retry can deliver, whatever else failed."""

    @property
    def rows(self) -> int:
        """Rows accounted for: messages produced to the topic (acknowledged or failed) and dead letters."""
        return self.produced + self.diverted

    def note_error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def on_failure(self, error: KafkaError | None, message: Message) -> None:
        """The producer's delivery callback: with failure-only reports it runs once per lost message."""
        if error is None:
            return
        self.failed += 1
        key = message.key()
        self.bytes -= len(message) + (len(key) if key is not None else 0)
        self.note_error(f"{describe_message(message)}: {error.str()}")
        if self.refused is None and error.code() in _AUTHORIZATION_ERRORS:
            self.refused = error.str()

    def on_dead_letter(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.dead_lettered += 1
            return
        self.dead_letter_failed += 1
        self.note_error(f"dead-letter {describe_message(message)}: {error.str()}")


def describe_message(message: Message) -> str:
    key = message.key()
    key_text = key.decode("utf-8", "replace") if key is not None else "null"
    return f"message key {key_text!r} ({len(message)} bytes) to {message.topic()}"


class AcknowledgementTimeline:
    """
    Delivery latency without a delivery report per message.

    Each checkpoint notes how many messages had been produced by then and how many of them the broker had
    acknowledged. The k-th acknowledgement is matched with the k-th message produced: Kafka acknowledges a
    partition in order, so that is each message's own latency to within the time between checkpoints
    (CHECKPOINT_EVERY messages, a wait for queue space, or one FLUSH_STEP_S of the final flush).
    """

    def __init__(self, histogram: LatencyHistogram) -> None:
        self.histogram = histogram
        self._marks: deque[tuple[int, float]] = deque()
        self._matched = 0

    def note(self, produced: int, acknowledged: int, now: float) -> None:
        marks = self._marks
        if not marks or marks[-1][0] < produced:
            marks.append((produced, now))
        while marks and self._matched < acknowledged:
            upto, produced_at = marks[0]
            matched = min(upto, acknowledged)
            self.histogram.record((now - produced_at) * 1000.0, matched - self._matched)
            self._matched = matched
            if matched == upto:
                marks.popleft()


class InfoLogger(Protocol):
    """What progress lines need of a logger: a ``logging.Logger``, or a task's own (Airflow's structlog logger)."""

    def info(self, message: Any, /, *args: Any) -> object: ...


class ProgressLog:
    """Logs rows, rate and elapsed time (and ETA when the total is known) at most every ``interval_s``."""

    def __init__(self, logger: InfoLogger, interval_s: float = 10.0, total: int | None = None) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.total = total
        self.started = time.monotonic()
        self._next = self.started + interval_s

    def maybe_log(self, rows: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        elapsed = now - self.started
        rate = rows / elapsed if elapsed > 0 else 0.0
        if self.total and rate > 0:
            eta = (self.total - rows) / rate
            self.logger.info(
                "Progress: %d/%d rows, %.0f rows/s, %.1f s elapsed, ETA %.0f s", rows, self.total, rate, elapsed, eta
            )
        else:
            self.logger.info("Progress: %d rows, %.0f rows/s, %.1f s elapsed", rows, rate, elapsed)


class BulkSender:
    """
    Produces many messages through one producer of its own and accounts for every one of them.

    ``send_batch`` never blocks on the network: when librdkafka's local queue is full it waits for space.
    ``checkpoint`` (every CHECKPOINT_EVERY messages) serves failure reports, raises at the first one and
    notes acknowledgements. ``finish`` flushes once, bounded by ``flush_timeout_s``.

    Rows larger than the producer accepts (``message.max.bytes``, which the hook fits to the topic's own
    ``max.message.bytes``, so the broker never rejects a whole batch for one large row) fail the run, or go
    to the dead-letter topic through a producer made from ``dead_letter_config`` at the first such row: a
    separate, non-transactional producer with its own limits, so the row fits there though it did not fit the
    main topic.

    ``headers`` go with every message, dead letters included: one list for the run, passed to every ``produce``
    as it is (positionally, see :data:`NOW`).
    """

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        *,
        dead_letter_topic: str | None = None,
        dead_letter_config: dict[str, Any] | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.tracker = DeliveryTracker()
        self.producer = Producer({**config, **FAILURE_ONLY_REPORTS, "on_delivery": self.tracker.on_failure})
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.headers: list[tuple[str, str | bytes | None]] = list(headers)
        self._dead_letter_config = dead_letter_config
        self._dead_letter_producer: Producer | None = None
        self._timeline = AcknowledgementTimeline(self.tracker.latency)

    def send_batch(self, keys: Sequence[str | None], values: Sequence[bytes]) -> None:
        """
        Queue one message per (key, value). Raises ``DeliveryError`` as soon as a failure report arrives:
        the run is lost anyway, and reading on would wait ``message.timeout.ms`` again for every queue of rows.

        A fetch's worth of messages at a time: the per-message work is one ``produce`` call; messages and
        bytes are counted per run of queued messages.
        """
        produce, topic, headers = self.producer.produce, self.topic, self.headers or None
        counted = 0
        for start in range(0, len(values), CHECKPOINT_EVERY):
            end = min(start + CHECKPOINT_EVERY, len(values))
            for index in range(start, end):
                try:
                    produce(topic, values[index], keys[index], ANY_PARTITION, None, None, NOW, headers)
                except (BufferError, KafkaException):
                    # Count what is queued before waiting or raising, so the account stays exact.
                    self._count_queued(keys, values, counted, index)
                    counted = index if self._produce_slowly(keys[index], values[index]) else index + 1
            self._count_queued(keys, values, counted, end)
            counted = end
            self.checkpoint()

    def _count_queued(self, keys: Sequence[str | None], values: Sequence[bytes], start: int, end: int) -> None:
        tracker = self.tracker
        tracker.produced += end - start
        tracker.bytes += sum(map(len, values[start:end])) + len("".join(filter(None, keys[start:end])).encode())

    def _produce_slowly(self, key: str | None, value: bytes) -> bool:
        """The queue is full or the row too large: wait for space, or divert it. True if it went to the topic."""
        while True:
            try:
                self.producer.produce(self.topic, value, key, ANY_PARTITION, None, None, NOW, self.headers or None)
                return True
            except BufferError:
                self.producer.poll(QUEUE_FULL_WAIT_S)
                self.checkpoint()
            except KafkaException as err:
                if not is_size_error(err.args[0]):
                    raise
                self._too_large(key, value, err.args[0].str())
                return False

    def checkpoint(self) -> None:
        """Serves failure reports (raising at the first), and notes acknowledgements for the latency."""
        self.producer.poll(0)
        self._settle()
        self.raise_for_failures()

    def _settle(self) -> None:
        tracker = self.tracker
        tracker.acked = tracker.produced - tracker.failed - len(self.producer)
        self._timeline.note(tracker.produced, tracker.acked, time.monotonic())

    def _too_large(self, key: str | None, value: bytes, reason: str) -> None:
        if not self.dead_letter_topic or self._dead_letter_config is None:
            raise MessageTooLargeError(
                f"row with key {key!r} is {len(value)} bytes, larger than topic {self.topic!r} accepts "
                f"({reason}); set dead_letter_topic to divert such rows, or raise max.message.bytes on the "
                "topic (and message.max.bytes in the producer config)"
            )
        self.tracker.diverted += 1
        if self._dead_letter_producer is None:
            self._dead_letter_producer = Producer(self._dead_letter_config)
        headers: list[tuple[str, str | bytes | None]] = [
            (DEAD_LETTER_ERROR_HEADER, f"too large for {self.topic}: {reason}".encode()),
            (DEAD_LETTER_TOPIC_HEADER, self.topic.encode()),
            (DEAD_LETTER_SIZE_HEADER, str(len(value)).encode()),
            *self.headers,
        ]
        while True:
            try:
                self._dead_letter_producer.produce(
                    self.dead_letter_topic,
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=self.tracker.on_dead_letter,
                )
                break
            except BufferError:
                self._dead_letter_producer.poll(QUEUE_FULL_WAIT_S)
            except KafkaException as err:
                self.tracker.dead_letter_failed += 1
                self.tracker.note_error(f"dead-letter row with key {key!r} ({len(value)} bytes): {err}")
                return
        self._dead_letter_producer.poll(0)

    def finish(self, flush_timeout_s: float) -> None:
        """Wait for every acknowledgement; anything still unacknowledged after the timeout counts as failed."""
        deadline = time.monotonic() + flush_timeout_s
        remaining = len(self.producer)
        while remaining and (left := deadline - time.monotonic()) > 0:
            remaining = self.producer.flush(min(FLUSH_STEP_S, left))
            self._settle()
        tracker = self.tracker
        if remaining:
            # Purged, they are reported failed one by one (with their bytes) and can never arrive later.
            tracker.note_error(
                f"{remaining} message(s) still unacknowledged after {flush_timeout_s:.0f} s (broker unreachable?)"
            )
            self.producer.purge()
            self.producer.flush(0)
        self._settle()
        if unreported := len(self.producer):
            tracker.failed += unreported
        if self._dead_letter_producer is not None:
            lost = self._dead_letter_producer.flush(max(deadline - time.monotonic(), 0))
            if lost:
                tracker.dead_letter_failed += lost
                tracker.note_error(f"{lost} dead letter(s) still unacknowledged after {flush_timeout_s:.0f} s")

    def account(self) -> str:
        """The counts as every delivery error states them."""
        tracker = self.tracker
        dead_letters = f", nor {tracker.dead_letter_failed} dead letter(s)" if tracker.dead_letter_failed else ""
        return (
            f"{tracker.failed} of {tracker.produced} message(s) to {self.topic!r} were not acknowledged "
            f"({tracker.acked} acknowledged){dead_letters}"
        )

    def raise_for_failures(self) -> None:
        tracker = self.tracker
        if tracker.failed or tracker.dead_letter_failed:
            raise self._failure()

    def _failure(self) -> DeliveryError:
        tracker = self.tracker
        text = f"{self.account()}; first errors: {'; '.join(tracker.errors)}"
        if tracker.refused is not None:
            return DeliveryNotAuthorizedError(
                f"{text}; the broker refused the connection's principal ({tracker.refused}): grant it WRITE on "
                f"topic {self.topic!r} (and IDEMPOTENT_WRITE on the cluster for brokers before 3.0)"
            )
        return DeliveryError(text)

    def restated(self, error: DeliveryError) -> DeliveryError:
        """
        ``error`` with the counts as they stand now. An error raised mid-run counts what was acknowledged at that
        moment; after the final flush delivered the rest, only the restated counts agree with the run's result.
        """
        if isinstance(error, MessageTooLargeError):
            return MessageTooLargeError(f"{error}; {self.account()}")
        return self._failure()
