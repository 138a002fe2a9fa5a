"""
Bulk delivery to Kafka with an exact account of what the broker acknowledged.

The per-message path is ``produce`` + ``poll(0)``: no flush per message or batch (that serialises the
pipeline on the network round trip), one ``flush`` at the end. Every delivery report is counted in
``DeliveryTracker``: acknowledged, failed (with the first few reasons), bytes and librdkafka's own
per-message latency. A caller decides success from the tracker, never from the absence of an exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pstt_provider.latency import LatencyHistogram

MAX_ERRORS_KEPT = 5
POLL_EVERY = 256
"""Serve delivery reports every this many messages: often enough to keep the queue moving, not per message."""
DEAD_LETTER_ERROR_HEADER = "pstt-error"
DEAD_LETTER_TOPIC_HEADER = "pstt-source-topic"
DEAD_LETTER_SIZE_HEADER = "pstt-value-bytes"

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """Messages were not acknowledged by the broker; the message has the counts and the first reasons."""


class MessageTooLargeError(DeliveryError):
    """A row is larger than the producer or the topic accepts and no dead-letter topic is set."""


_SIZE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


def is_size_error(error: KafkaError) -> bool:
    return error.code() in _SIZE_ERRORS


@dataclass
class DeliveryTracker:
    """Counts delivery reports; the delivery callback runs inside ``poll``/``flush`` on the caller's thread."""

    produced: int = 0
    acked: int = 0
    failed: int = 0
    dead_lettered: int = 0
    bytes: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: list[str] = field(default_factory=list)

    def note_error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        """Runs once per message: ``len(message)`` is the value's length without fetching the payload object."""
        if error is None:
            self.acked += 1
            key = message.key()
            self.bytes += len(message) + (len(key) if key is not None else 0)
            latency_s = message.latency()
            if latency_s is not None:
                self.latency.record(latency_s * 1000.0)
            return
        self.failed += 1
        self.note_error(f"{describe_message(message)}: {error.str()}")

    def on_dead_letter(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.dead_lettered += 1
            return
        self.failed += 1
        self.note_error(f"dead-letter {describe_message(message)}: {error.str()}")


def describe_message(message: Message) -> str:
    key = message.key()
    key_text = key.decode("utf-8", "replace") if key is not None else "null"
    return f"message key {key_text!r} ({len(message.value() or b'')} bytes) to {message.topic()}"


class ProgressLog:
    """Logs rows, rate and elapsed time (and ETA when the total is known) at most every ``interval_s``."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0, total: int | None = None) -> None:
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
    Produces many messages through one producer and accounts for every one of them.

    ``send`` never blocks on the network: it polls for delivery reports, and when librdkafka's local queue
    is full it polls until space frees up. ``finish`` flushes once, bounded by ``flush_timeout_s``.

    Rows larger than the producer accepts (``message.max.bytes``, which the hook fits to the topic's own
    ``max.message.bytes``, so the broker never rejects a whole batch for one large row) fail the run, or go
    to the dead-letter topic through ``dead_letter_producer``: a separate, non-transactional producer with
    its own limits, so the row fits there even though it did not fit the main topic.
    """

    def __init__(
        self,
        producer: Producer,
        topic: str,
        *,
        dead_letter_topic: str | None = None,
        dead_letter_producer: Callable[[], Producer] | None = None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self._dead_letter_factory = dead_letter_producer
        self._dead_letter_producer: Producer | None = None
        self.tracker = DeliveryTracker()

    def send(self, key: str | bytes | None, value: bytes) -> None:
        """
        Queue one message. Raises ``DeliveryError`` as soon as a delivery report says a message failed: the
        run is lost anyway, and reading on would wait ``message.timeout.ms`` again for every queue of rows.
        """
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=self.tracker.on_delivery)
                break
            except BufferError:
                self.producer.poll(0.1)
                self.raise_for_failures()
            except KafkaException as err:
                if not is_size_error(err.args[0]):
                    raise
                self._too_large(key, value, err.args[0].str())
                return
        self.tracker.produced += 1
        if not self.tracker.produced % POLL_EVERY:
            self.producer.poll(0)
            self.raise_for_failures()

    def _too_large(self, key: str | bytes | None, value: bytes, reason: str) -> None:
        key_text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if not self.dead_letter_topic or self._dead_letter_factory is None:
            raise MessageTooLargeError(
                f"row with key {key_text!r} is {len(value)} bytes, larger than topic {self.topic!r} accepts "
                f"({reason}); set dead_letter_topic to divert such rows, or raise max.message.bytes on the "
                "topic (and message.max.bytes in the producer config)"
            )
        if self._dead_letter_producer is None:
            self._dead_letter_producer = self._dead_letter_factory()
        self.tracker.produced += 1
        headers = [
            (DEAD_LETTER_ERROR_HEADER, f"too large for {self.topic}: {reason}".encode()),
            (DEAD_LETTER_TOPIC_HEADER, self.topic.encode()),
            (DEAD_LETTER_SIZE_HEADER, str(len(value)).encode()),
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
                self._dead_letter_producer.poll(0.1)
            except KafkaException as err:
                self.tracker.failed += 1
                self.tracker.note_error(f"dead-letter row with key {key_text!r} ({len(value)} bytes): {err}")
                return
        self._dead_letter_producer.poll(0)

    def finish(self, flush_timeout_s: float) -> None:
        """Wait for every delivery report; anything still unreported after the timeout counts as failed."""
        deadline = time.monotonic() + flush_timeout_s
        remaining = self.producer.flush(flush_timeout_s)
        if self._dead_letter_producer is not None:
            remaining += self._dead_letter_producer.flush(max(deadline - time.monotonic(), 0))
        if remaining:
            self.tracker.failed += remaining
            self.tracker.note_error(
                f"{remaining} message(s) still unacknowledged after {flush_timeout_s:.0f} s (broker unreachable?)"
            )

    def raise_for_failures(self) -> None:
        tracker = self.tracker
        if tracker.failed:
            raise DeliveryError(
                f"{tracker.failed} of {tracker.produced} message(s) to {self.topic!r} were not acknowledged "
                f"({tracker.acked} acknowledged); first errors: {'; '.join(tracker.errors)}"
            )


def result_counts(tracker: DeliveryTracker) -> dict[str, Any]:
    latency = tracker.latency
    return {
        "messages_sent": tracker.acked,
        "messages_failed": tracker.failed,
        "messages_dead_lettered": tracker.dead_lettered,
        "bytes": tracker.bytes,
        "latency_ms": {
            "avg": round(latency.avg_ms, 3),
            "p50": round(latency.quantile_ms(0.5), 3),
            "p99": round(latency.quantile_ms(0.99), 3),
            "max": round(latency.max_ms, 3),
        },
        "latency_histogram": latency.to_dict(),
    }
