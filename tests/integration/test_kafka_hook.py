from __future__ import annotations

import json

import pytest
from helpers.kafka import new_topic

from pstt_provider.delivery import BulkSender
from pstt_provider.exceptions import DeliveryError
from pstt_provider.hooks.kafka import PsttKafkaHook


def test_hook_producer_delivers_messages_that_a_consumer_reads_back(topic, consume):
    producer = PsttKafkaHook("kafka_default").get_producer()
    errors: list[object] = []
    for n in range(50):
        producer.produce(
            topic, key=f"k{n}", value=f"v{n}", on_delivery=lambda err, _m: errors.append(err) if err else None
        )
    assert producer.flush(30) == 0
    assert errors == []

    records = consume(topic, expected=50)

    assert [(r.key, r.value) for r in records] == [(f"k{n}".encode(), f"v{n}".encode()) for n in range(50)]


def test_connection_test_button_reports_the_brokers():
    ok, message = PsttKafkaHook("kafka_default").test_connection()

    assert ok, message
    assert "127.0.0.1:9092" in message


def test_connection_test_button_reports_an_unreachable_broker(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_CLOSED_PORT",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:1", "socket.timeout.ms": 2000}}),
    )

    ok, message = PsttKafkaHook("kafka_closed_port").test_connection()

    assert not ok
    assert message.startswith("no broker answered within 10 s: ")
    assert "127.0.0.1:1" in message


def test_defaults_are_delivery_safe_and_overrides_win_over_the_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_TUNED",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 5}}),
    )

    config = PsttKafkaHook("kafka_tuned").producer_config({"compression.type": "zstd"})

    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == 5
    assert config["compression.type"] == "zstd"


def test_producer_limits_are_fitted_under_the_topics_max_message_bytes(kafka_bootstrap):
    hook = PsttKafkaHook("kafka_default")
    small = new_topic(kafka_bootstrap, config={"max.message.bytes": "50000"})
    ordinary = new_topic(kafka_bootstrap)
    topics = hook.topics()

    assert topics.fit(small, {}, 30) == {"message.max.bytes": 49_488, "batch.size": 49_488}
    assert topics.fit(ordinary, {"linger.ms": 1}, 30) == {"linger.ms": 1}
    assert topics.fit(small, {"message.max.bytes": 200_000}, 30) == {"message.max.bytes": 200_000}


def test_bulk_sender_counts_acknowledgements_bytes_and_latency(topic, consume):
    hook = PsttKafkaHook("kafka_default")
    sender = BulkSender(hook.producer_config(), topic)
    sender.send_batch([f"k{n}" for n in range(2000)], [b"x" * 100] * 2000)
    sender.finish(60)
    sender.raise_for_failures()

    tracker = sender.tracker
    assert (tracker.produced, tracker.acked, tracker.failed) == (2000, 2000, 0)
    assert tracker.bytes == sum(len(f"k{n}") + 100 for n in range(2000))
    assert tracker.latency.total == 2000
    assert len(consume(topic, expected=2000)) == 2000


def test_bulk_sender_waits_for_queue_space_and_still_counts_each_message_once(topic, consume):
    hook = PsttKafkaHook("kafka_default")
    sender = BulkSender(hook.producer_config({"queue.buffering.max.messages": 100}), topic)
    keys = [f"k{n}" if n % 3 else None for n in range(3000)]
    sender.send_batch(keys, [b"y" * 50] * 3000)
    sender.finish(60)
    sender.raise_for_failures()

    tracker = sender.tracker
    assert (tracker.produced, tracker.acked, tracker.failed) == (3000, 3000, 0)
    assert tracker.bytes == sum(len(key or "") + 50 for key in keys)
    assert tracker.latency.total == 3000
    records = consume(topic, expected=3000)
    assert sorted((r.key or b"").decode() for r in records) == sorted(key or "" for key in keys)


def test_bulk_sender_fails_naming_what_was_not_acknowledged(private_broker):
    topic = new_topic(private_broker.bootstrap)
    hook = PsttKafkaHook("kafka_default")
    sender = BulkSender(
        hook.producer_config({"bootstrap.servers": private_broker.bootstrap, "message.timeout.ms": 3000}), topic
    )
    private_broker.stop()
    sender.send_batch([f"k{n}" for n in range(10)], [b"lost"] * 10)
    sender.finish(10)

    with pytest.raises(DeliveryError, match=r"10 of 10 message\(s\) .* not acknowledged \(0 acknowledged\)"):
        sender.raise_for_failures()
