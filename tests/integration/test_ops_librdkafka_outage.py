"""
librdkafka's own log during a 60-second broker outage in the middle of a run, against a private broker.

Without a Python logger librdkafka writes every failed reconnect to stderr, which the task log shows as ERROR: one
outage put 583 such lines in one task log. Through the hook's ``LibrdkafkaLog`` each message appears at most once
per 30 s. The run itself rides the outage out (shorter than ``message.timeout.ms``) and every row is read back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from helpers.kafka import PrivateBroker, consume_all, new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.hooks.librdkafka_log import LIBRDKAFKA_LOGGER
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 100_000
OUTAGE_S = 60.0
MAX_LIBRDKAFKA_LINES = 10
RAW_LIBRDKAFKA_LINE = re.compile(r"^%\d\|\d+\.\d+\|", re.MULTILINE)
"""librdkafka's own stderr format: ``%3|1700000000.123|FAIL|rdkafka#producer-1| ...``."""
QUIET = logging.getLogger("tests.ops.watcher")
QUIET.setLevel(logging.CRITICAL)
QUIET.propagate = False


@pytest.fixture(scope="module")
def source_table(postgres: dict) -> Iterator[str]:
    name = f"pstt_ops_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**postgres, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} AS SELECT g AS id, 'K' || lpad(g::text, 6, '0') AS code "
            f"FROM generate_series(1, {ROWS}) g"
        )
        yield name
        conn.execute(f"DROP TABLE {name}")


class Outage(threading.Thread):
    """Once ``topic`` holds ``after`` messages, stops the broker for ``seconds`` and starts it again."""

    def __init__(self, broker: PrivateBroker, topic: str, after: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.broker, self.topic, self.after, self.seconds = broker, topic, after, seconds
        self.stopped_at: float | None = None
        self.restarted_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._wait_for_messages()
            self.broker.stop()
            self.stopped_at = time.monotonic()
            time.sleep(self.seconds)
            self.broker.start()
            self.restarted_at = time.monotonic()
        except BaseException as err:
            self.error = err

    def _wait_for_messages(self) -> None:
        # A logger of its own: this watcher is closed before the outage, and must not add lines to what is counted.
        watcher = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": uuid.uuid4().hex, "logger": QUIET})
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                _low, high = watcher.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
                if high >= self.after:
                    return
                time.sleep(0.05)
            raise TimeoutError(f"{self.topic} never reached {self.after} messages")
        finally:
            watcher.close()


def test_a_60_second_broker_outage_leaves_at_most_10_librdkafka_lines_in_the_task_log(
    private_broker, source_table, monkeypatch, caplog, capfd, record_property
):
    caplog.set_level(logging.INFO)
    conn_id = f"pstt_ops_outage_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": private_broker.bootstrap}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    topic = new_topic(private_broker.bootstrap)
    operator = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT id, code FROM {source_table} WHERE id % 500 <> 0 OR pg_sleep(0.05)::text = ''",
        topic=topic,
        message_key_field="code",
        kafka_config_id=conn_id,
        include_metadata=False,
        batch_size=2000,
    )
    outage = Outage(private_broker, topic, after=10_000, seconds=OUTAGE_S)
    outage.start()

    result = operator.execute(context_for(RecordingTaskInstance()))

    outage.join(180)
    assert outage.error is None, outage.error
    assert outage.restarted_at is not None
    assert (result["state"], result["messages_sent"], result["messages_failed"]) == ("success", ROWS, 0)
    records = consume_all(topic, bootstrap=private_broker.bootstrap, expected=ROWS, timeout_s=180)
    assert {r.key for r in records} == {f"K{n:06d}".encode() for n in range(1, ROWS + 1)}

    output = capfd.readouterr()
    logged = [r for r in caplog.records if r.name == LIBRDKAFKA_LOGGER.name and r.levelno >= logging.INFO]
    raw = RAW_LIBRDKAFKA_LINE.findall(output.err) + RAW_LIBRDKAFKA_LINE.findall(output.out)
    lines = [f"{r.levelname} {r.getMessage()}" for r in logged] + raw
    record_property("outage_s", round(outage.restarted_at - outage.stopped_at, 1))
    record_property("librdkafka_lines", len(lines))
    record_property("librdkafka_errors", sum(r.levelno >= logging.ERROR for r in logged))
    assert raw == [], "librdkafka wrote to stderr: a client without the hook's logger"
    assert len(lines) <= MAX_LIBRDKAFKA_LINES, "\n".join(lines)
