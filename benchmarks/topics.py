"""
A fresh topic per variant, and the count of what actually landed in it.

The count reads the topic back with ``isolation.level=read_committed`` up to its end: for a transactional topic
the high watermarks also count commit markers (one offset per transaction and partition) and any aborted
messages, so they would overstate delivery; reading committed messages counts exactly what a consumer sees.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import orjson
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


@dataclass(frozen=True)
class ReadBack:
    """What a read_committed consumer found in a topic."""

    messages: int
    distinct_keys: int
    bytes: int
    order_breaks: int | None = None
    """
    Messages whose ``order_field`` is below the previous one's in the same partition, one per partition aside
    (None: not checked). That one is the wrap of a scan that started mid-table: PostgreSQL's synchronized
    sequential scans start where an earlier scan of the same table last was, so a plain SELECT * can begin
    anywhere, in the table's order all the same.
    """


def delivered(bootstrap: str, topic: str, timeout_s: float = 600.0) -> int:
    """Messages a read_committed consumer gets from ``topic``, read from the beginning to the end of every partition."""
    return read_back(bootstrap, topic, timeout_s=timeout_s).messages


def read_back(bootstrap: str, topic: str, order_field: str | None = None, timeout_s: float = 600.0) -> ReadBack:
    """
    ``topic`` read from the beginning to the end of every partition: its messages, distinct keys and bytes (key +
    value); with ``order_field``, a field of the JSON value (top level, or under "data"), whether each partition
    holds the rows in that field's order.
    """
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
        count = size = 0
        keys: set[bytes | None] = set()
        last: dict[int, int] = {}
        breaks: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=50_000, timeout=1.0):
                error = message.error()
                if error is None:
                    count += 1
                    key, value = message.key(), message.value() or b""
                    keys.add(key)
                    size += len(key or b"") + len(value)
                    if order_field:
                        partition = message.partition()
                        breaks[partition] = breaks.get(partition, 0) + _out_of_order(
                            value, order_field, partition, last
                        )
                elif error.code() == KafkaError._PARTITION_EOF:
                    if message.offset() >= ends[message.partition()]:
                        pending.discard(message.partition())
                else:
                    raise RuntimeError(f"reading {topic} back: {error}")
        if pending:
            raise TimeoutError(
                f"reading {topic} back: partitions {sorted(pending)} not read to the end in {timeout_s}s"
            )
        unordered = sum(max(n - 1, 0) for n in breaks.values())
        return ReadBack(count, len(keys), size, unordered if order_field else None)
    finally:
        consumer.close()


def _out_of_order(value: bytes, order_field: str, partition: int, last: dict[int, int]) -> int:
    """1 when this message's ``order_field`` is below the previous one of its partition (kept in ``last``)."""
    document = orjson.loads(value)
    row = document.get("data", document) if isinstance(document.get("data"), dict) else document
    current = int(row[order_field])
    previous = last.get(partition)
    last[partition] = current
    return int(previous is not None and current < previous)
