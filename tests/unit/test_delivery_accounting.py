"""
``BulkSender``'s account of a run against a stub producer that behaves as librdkafka's does to its caller: a local
queue that can fill, failure-only delivery reports, size refusals at ``produce``, purged messages reported failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from confluent_kafka import KafkaError, KafkaException

from pstt_provider import delivery
from pstt_provider.delivery import BulkSender
from pstt_provider.exceptions import DeliveryError, MessageTooLargeError


@dataclass
class StubMessage:
    _topic: str
    _key: str | None
    _value: bytes
    _headers: Any = None

    def key(self) -> bytes | None:
        return self._key.encode() if self._key is not None else None

    def topic(self) -> str:
        return self._topic

    def headers(self) -> Any:
        return self._headers

    def __len__(self) -> int:
        return len(self._value)


class StubProducer:
    """A producer whose broker acknowledges everything queued at each poll/flush, except the ``failing`` keys."""

    made: ClassVar[list[StubProducer]] = []
    failing_from_start: ClassVar[set[bytes]] = set()
    """Keys the broker refuses, for producers made from now on (a dead-letter producer is made mid-run)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.capacity = int(config.get("queue.buffering.max.messages", 100_000))
        self.max_bytes = int(config.get("message.max.bytes", 1_000_000))
        self.failing: set[bytes] = set(StubProducer.failing_from_start)
        self.answering = True
        self.per_poll: int | None = None
        """At most this many queued messages get their answer per poll (None: all)."""
        self.queued: list[tuple[StubMessage, Any]] = []
        self.delivered: list[StubMessage] = []
        self.full_waits = 0
        StubProducer.made.append(self)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: str | None = None,
        partition: int = -1,
        callback: Any = None,
        on_delivery: Any = None,
        timestamp: int = 0,
        headers: Any = None,
    ):
        """``Producer.produce``'s own parameters, in its order: the sender passes them positionally."""
        if len(value) > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        if len(self.queued) >= self.capacity:
            self.full_waits += 1
            raise BufferError("Local: Queue full")
        self.queued.append((StubMessage(topic, key, value, headers), on_delivery or self.config.get("on_delivery")))

    def _report(self, message: StubMessage, callback: Any, error: KafkaError | None) -> None:
        if callback is not None and (error is not None or not self.config.get("delivery.report.only.error")):
            callback(error, message)

    def poll(self, timeout: float = 0) -> int:
        if self.answering:
            answered = self.queued[: self.per_poll]
            del self.queued[: len(answered)]
            for message, callback in answered:
                failed = message.key() in self.failing
                self._report(message, callback, KafkaError(KafkaError._MSG_TIMED_OUT) if failed else None)
                if not failed:
                    self.delivered.append(message)
        return 0

    def flush(self, timeout: float = 0) -> int:
        self.per_poll = None
        self.poll(timeout)
        return len(self.queued)

    def purge(self) -> None:
        for message, callback in self.queued:
            self._report(message, callback, KafkaError(KafkaError._PURGE_QUEUE))
        self.queued.clear()

    def __len__(self) -> int:
        return len(self.queued)


@pytest.fixture(autouse=True)
def stub_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    StubProducer.made.clear()
    StubProducer.failing_from_start = set()
    monkeypatch.setattr(delivery, "Producer", StubProducer)


def keys_and_values(count: int, size: int = 10) -> tuple[list[str], list[bytes]]:
    return [f"k{n}" for n in range(count)], [b"v" * size] * count


def test_every_acknowledged_message_is_counted_once_with_its_key_and_value_bytes():
    sender = BulkSender({}, "traces")
    keys, values = keys_and_values(600)

    sender.send_batch(keys, values)
    sender.finish(5)
    sender.raise_for_failures()

    tracker = sender.tracker
    assert (tracker.produced, tracker.acked, tracker.failed, tracker.rows) == (600, 600, 0, 600)
    assert tracker.bytes == sum(len(key) + 10 for key in keys)
    assert len(StubProducer.made[0].delivered) == 600


def test_null_keys_count_no_key_bytes():
    sender = BulkSender({}, "traces")

    sender.send_batch(["a", None, "bcd"], [b"12", b"345", b"6"])
    sender.finish(5)

    assert (sender.tracker.acked, sender.tracker.bytes) == (3, 1 + 2 + 3 + 3 + 1)


def test_a_full_queue_is_waited_out_and_no_message_is_lost_or_counted_twice():
    sender = BulkSender({"queue.buffering.max.messages": 100}, "traces")
    keys, values = keys_and_values(1000)

    sender.send_batch(keys, values)
    sender.finish(5)

    producer = StubProducer.made[0]
    assert producer.full_waits > 0
    assert (sender.tracker.produced, sender.tracker.acked) == (1000, 1000)
    assert [m.key() for m in producer.delivered] == [key.encode() for key in keys]
    assert sender.tracker.bytes == sum(len(key) + 10 for key in keys)


def test_a_failure_report_stops_the_batch_at_the_next_checkpoint_naming_the_message():
    sender = BulkSender({}, "traces")
    StubProducer.made[0].failing = {b"k3"}
    keys, values = keys_and_values(600)

    with pytest.raises(DeliveryError, match=r"1 of 256 message\(s\) to 'traces' were not acknowledged") as failure:
        sender.send_batch(keys, values)

    assert "message key 'k3' (10 bytes) to traces" in str(failure.value)
    tracker = sender.tracker
    assert (tracker.produced, tracker.failed, tracker.acked) == (256, 1, 255)
    assert tracker.bytes == sum(len(key) + 10 for key in keys[:256]) - (2 + 10)


def test_a_mid_run_error_is_restated_with_the_counts_after_the_final_flush():
    sender = BulkSender({}, "traces")
    producer = StubProducer.made[0]
    producer.answering = False
    sender.send_batch(*keys_and_values(10))
    producer.failing, producer.answering, producer.per_poll = {b"k0"}, True, 1

    with pytest.raises(DeliveryError) as mid_run:
        sender.checkpoint()
    sender.finish(5)

    assert "1 of 10 message(s) to 'traces' were not acknowledged (0 acknowledged)" in str(mid_run.value)
    restated = sender.restated(mid_run.value)
    assert "1 of 10 message(s) to 'traces' were not acknowledged (9 acknowledged)" in str(restated)
    assert type(restated) is DeliveryError


def test_messages_still_unacknowledged_when_the_flush_gives_up_count_as_failed():
    sender = BulkSender({}, "traces")
    StubProducer.made[0].answering = False
    sender.send_batch(*keys_and_values(20))

    sender.finish(0.05)

    tracker = sender.tracker
    assert (tracker.produced, tracker.acked, tracker.failed, tracker.bytes) == (20, 0, 20, 0)
    assert any("20 message(s) still unacknowledged" in error for error in tracker.errors)
    with pytest.raises(DeliveryError, match=r"20 of 20 message\(s\) .* \(0 acknowledged\)"):
        sender.raise_for_failures()


def test_a_row_too_large_goes_to_the_dead_letter_topic_with_its_reason_and_is_counted_there():
    sender = BulkSender(
        {"message.max.bytes": 100},
        "traces",
        dead_letter_topic="traces-dlq",
        dead_letter_config={"message.max.bytes": 10_000},
    )

    sender.send_batch(["small", "big", "small2"], [b"s" * 10, b"B" * 500, b"t" * 10])
    sender.finish(5)
    sender.raise_for_failures()

    tracker = sender.tracker
    assert (tracker.produced, tracker.acked, tracker.diverted, tracker.dead_lettered) == (2, 2, 1, 1)
    assert tracker.rows == 3
    dead_letter = StubProducer.made[1].delivered[0]
    assert (dead_letter.topic(), dead_letter.key()) == ("traces-dlq", b"big")
    headers = dict(dead_letter.headers())
    assert headers["pstt-source-topic"] == b"traces"
    assert headers["pstt-value-bytes"] == b"500"
    assert headers["pstt-error"].startswith(b"too large for traces")


def test_a_row_too_large_without_a_dead_letter_topic_fails_naming_its_key_and_size():
    sender = BulkSender({"message.max.bytes": 100}, "traces")

    with pytest.raises(MessageTooLargeError, match=r"row with key 'big' is 500 bytes"):
        sender.send_batch(["small", "big"], [b"s" * 10, b"B" * 500])

    assert sender.tracker.produced == 1  # the row before it is queued and counted; the large one is not


def test_dead_letters_the_dead_letter_topic_refuses_are_failures_of_the_run():
    sender = BulkSender({"message.max.bytes": 100}, "traces", dead_letter_topic="traces-dlq", dead_letter_config={})
    StubProducer.failing_from_start = {b"big"}

    with pytest.raises(DeliveryError, match=r"0 of 0 message\(s\).*, nor 1 dead letter\(s\).*'big' \(500 bytes\)"):
        sender.send_batch(["big"], [b"B" * 500])

    assert (sender.tracker.diverted, sender.tracker.dead_lettered, sender.tracker.dead_letter_failed) == (1, 0, 1)


def test_every_message_and_dead_letter_carries_the_run_s_header_list():
    headers = [("pstt-run-id", b"r"), ("pstt-query", b"q")]
    sender = BulkSender(
        {"message.max.bytes": 100}, "t", dead_letter_topic="t-dlq", dead_letter_config={}, headers=headers
    )

    sender.send_batch(["a", "big", "b"], [b"1", b"B" * 500, b"2"])
    sender.finish(5)

    main, dead_letters = StubProducer.made
    assert [(message.key(), message.headers()) for message in main.delivered] == [(b"a", headers), (b"b", headers)]
    [dead_letter] = dead_letters.delivered
    names = [name for name, _ in dead_letter.headers()]
    assert names[:3] == ["pstt-error", "pstt-source-topic", "pstt-value-bytes"]
    assert dead_letter.headers()[3:] == headers


def test_without_headers_produce_gets_none():
    sender = BulkSender({}, "t")
    sender.send_batch(["a"], [b"1"])
    sender.finish(5)
    [message] = StubProducer.made[0].delivered
    assert message.headers() is None
