"""
A fresh topic per variant, and the count of what actually landed in it.

The count reads the topic back with ``isolation.level=read_committed`` up to its end: for a transactional topic
the high watermarks also count commit markers (one offset per transaction and partition) and any aborted
messages, so they would overstate delivery; reading committed messages counts exactly what a consumer sees.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, name_hint: str, partitions: int) -> str:
    name = f"bench-{name_hint.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)[name].result(timeout=30)
    return name


def delete_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    admin.delete_topics([name], operation_timeout=30)[name].result(timeout=30)


def delivered(bootstrap: str, topic: str, timeout_s: float = 600.0) -> int:
    """Messages a read_committed consumer gets from ``topic``, read from the beginning to the end of every partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-count-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        assignment = [TopicPartition(topic, p, 0) for p in partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in assignment}
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign(assignment)
        count = 0
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=50_000, timeout=1.0):
                error = message.error()
                if error is None:
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    if message.offset() >= ends[message.partition()]:
                        pending.discard(message.partition())
                else:
                    raise RuntimeError(f"reading {topic} back: {error}")
        if pending:
            raise TimeoutError(
                f"reading {topic} back: partitions {sorted(pending)} not read to the end in {timeout_s}s"
            )
        return count
    finally:
        consumer.close()
