"""
`make demo`: the demo job end to end on the local broker.

Builds the SQLite demo database, publishes yesterday's traces through the provider's Kafka hook,
reads a few messages back from Kafka and prints the delivery summary.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
env = dict(
    shlex.split(line)[1].split("=", 1)
    for line in subprocess.run(
        [str(ROOT / "scripts/airflow.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
)
os.environ.update(env)

import demo_db  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from pstt_provider.hooks.kafka import PsttKafkaHook  # noqa: E402
from pstt_provider.query_file import parse_query_file  # noqa: E402

TOPIC = "pstt-demo-traces"


def main() -> None:
    db_path = Path(os.environ["PSTT_DEMO_DB"])
    print(f"demo database: {db_path} ({demo_db.build(db_path)} traces)")
    query = parse_query_file(ROOT / "queries/DEMO-001--TracceSpedizioni.sql")
    statement = query.statement("named")
    day = (date.today() - timedelta(days=1)).isoformat()
    values = {"DATA": day, "STATO": "%"}
    producer = PsttKafkaHook("kafka_default").get_producer()
    failed: list[str] = []
    started = time.monotonic()
    sent = 0
    with sqlite3.connect(db_path) as db:
        cursor = db.execute(statement.sql, statement.bind(values))
        columns = [c[0] for c in cursor.description]
        for row in cursor:
            record = dict(zip(columns, row, strict=True))
            producer.produce(
                TOPIC,
                key=record["BARCODE"].encode(),
                value=orjson.dumps(record),
                on_delivery=lambda err, _msg: failed.append(str(err)) if err else None,
            )
            producer.poll(0)
            sent += 1
    producer.flush(60)
    elapsed = time.monotonic() - started
    print_last_messages(3)
    print(f"\nrun for DATA={day}: {sent} rows, {sent - len(failed)} delivered, {len(failed)} failed, {elapsed:.2f} s")
    if failed:
        sys.exit(f"demo failed: {failed[0]}")


def print_last_messages(count: int) -> None:
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": "pstt-demo-reader"})
    _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    consumer.assign([TopicPartition(TOPIC, 0, max(0, high - count))])
    print(f"last {count} messages in {TOPIC}:")
    for message in consumer.consume(num_messages=count, timeout=10):
        print(f"  key={message.key().decode()} value={message.value().decode()}")
    consumer.close()


if __name__ == "__main__":
    main()
