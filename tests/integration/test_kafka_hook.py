from __future__ import annotations

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
