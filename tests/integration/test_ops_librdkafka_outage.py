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
import uuid
from collections.abc import Iterator

import pytest
from helpers.broker_faults import BrokerFault, Gate, numbered_keys, numbered_table, slowed_query
from helpers.kafka import consume_all, new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.hooks.librdkafka_log import LIBRDKAFKA_LOGGER
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 100_000
OUTAGE_S = 60.0
MAX_LIBRDKAFKA_LINES = 10
RAW_LIBRDKAFKA_LINE = re.compile(r"^%\d\|\d+\.\d+\|", re.MULTILINE)
"""librdkafka's own stderr format: ``%3|1700000000.123|FAIL|rdkafka#producer-1| ...``."""


@pytest.fixture(scope="module")
def source_table(postgres: dict) -> Iterator[str]:
    with numbered_table(postgres, "pstt_ops_outage", ROWS) as name:
        yield name


def test_a_60_second_broker_outage_leaves_at_most_10_librdkafka_lines_in_the_task_log(
    private_broker, source_table, postgres, monkeypatch, caplog, capfd, record_property
):
    caplog.set_level(logging.INFO)
    conn_id = f"pstt_ops_outage_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": private_broker.bootstrap}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    topic = new_topic(private_broker.bootstrap)
    gate = Gate(postgres, at_row=20_000)
    operator = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=slowed_query(source_table, "id, code", gate),
        topic=topic,
        message_key_field="code",
        kafka_config_id=conn_id,
        include_metadata=False,
        batch_size=2000,
    )
    outage = BrokerFault(private_broker, topic, 10_000, gate, restart_after_s=OUTAGE_S)
    outage.start()

    result = operator.execute(context_for(RecordingTaskInstance()))

    outage.result()
    assert outage.restarted_at is not None
    assert (result["state"], result["messages_sent"], result["messages_failed"]) == ("success", ROWS, 0)
    records = consume_all(topic, bootstrap=private_broker.bootstrap, expected=ROWS, timeout_s=180)
    assert {r.key for r in records} == numbered_keys(ROWS)

    output = capfd.readouterr()
    logged = [r for r in caplog.records if r.name == LIBRDKAFKA_LOGGER.name and r.levelno >= logging.INFO]
    raw = RAW_LIBRDKAFKA_LINE.findall(output.err) + RAW_LIBRDKAFKA_LINE.findall(output.out)
    lines = [f"{r.levelname} {r.getMessage()}" for r in logged] + raw
    record_property("outage_s", round(outage.restarted_at - outage.stopped_at, 1))
    record_property("librdkafka_lines", len(lines))
    record_property("librdkafka_errors", sum(r.levelno >= logging.ERROR for r in logged))
    assert raw == [], "librdkafka wrote to stderr: a client without the hook's logger"
    assert len(lines) <= MAX_LIBRDKAFKA_LINES, "\n".join(lines)
