"""
The runbook's other failures, with a PostgreSQL source: oversized rows and SQL errors are never silent.

Each case reads the topics back: what a failing run left behind, what the dead-letter topic holds (and its
error headers), and what the run's ``pstt_delivery`` result reports.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path

import pytest
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.delivery import DEAD_LETTER_ERROR_HEADER, DEAD_LETTER_SIZE_HEADER, DEAD_LETTER_TOPIC_HEADER
from pstt_provider.exceptions import DeliveryError, MessageKeyError, SourceQueryError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 1000
BIG_ROW = 500
TOPIC_LIMIT = 10_000
BIG_NOTE_BYTES = 50_000


@pytest.fixture
def shipments(new_pg_table) -> str:
    """ROWS rows keyed ``S0001``...; row BIG_ROW's note is larger than the topic's max.message.bytes."""
    return new_pg_table(
        "pstt_rel",
        f"AS SELECT g AS id, 'S' || lpad(g::text, 4, '0') AS code, "
        f"CASE WHEN g = {BIG_ROW} THEN repeat('y', {BIG_NOTE_BYTES}) ELSE 'ok' END AS note "
        f"FROM generate_series(1, {ROWS}) g",
    )


def publisher(table: str, topic: str, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT id, code, note FROM {table} ORDER BY id",
        topic=topic,
        message_key_field="code",
        **kwargs,
    )


def limited_topic(bootstrap: str) -> str:
    """Compression off below: the broker judges the real size, not an lz4-shrunk run of 'y'."""
    return new_topic(bootstrap, config={"max.message.bytes": str(TOPIC_LIMIT)})


NO_COMPRESSION = {"compression.type": "none"}
BIG_KEY = f"S{BIG_ROW:04d}"


def test_a_row_larger_than_the_topic_accepts_fails_the_run_naming_its_key_and_size(shipments, kafka_bootstrap, consume):
    topic = limited_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    with pytest.raises(DeliveryError) as failure:
        publisher(shipments, topic, producer_config=NO_COMPRESSION).execute(context_for(ti))

    named = re.search(rf"'{BIG_KEY}'\D*?(\d+) bytes", str(failure.value))
    assert named is not None, str(failure.value)
    assert int(named.group(1)) > BIG_NOTE_BYTES
    result = ti.xcoms["pstt_delivery"]
    assert result["state"] == "failed"
    assert result["messages_sent"] < ROWS
    assert BIG_KEY in " ".join(result["errors"])
    delivered = consume(topic)
    assert len(delivered) == result["messages_sent"]
    assert BIG_KEY.encode() not in {r.key for r in delivered}


def test_a_row_larger_than_the_topic_accepts_goes_to_the_dead_letter_topic_and_is_reported(
    shipments, kafka_bootstrap, consume
):
    topic = limited_topic(kafka_bootstrap)
    dead_letters = new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    result = publisher(shipments, topic, producer_config=NO_COMPRESSION, dead_letter_topic=dead_letters).execute(
        context_for(ti)
    )

    delivered = consume(topic, expected=ROWS - 1)
    diverted = consume(dead_letters, expected=1)
    assert sorted(r.key for r in delivered) == sorted(f"S{n:04d}".encode() for n in range(1, ROWS + 1) if n != BIG_ROW)
    assert [r.key for r in diverted] == [BIG_KEY.encode()]
    assert json.loads(diverted[0].value)["data"]["note"] == "y" * BIG_NOTE_BYTES
    headers = dict(diverted[0].headers)
    assert b"too large" in headers[DEAD_LETTER_ERROR_HEADER].lower()
    assert headers[DEAD_LETTER_TOPIC_HEADER] == topic.encode()
    assert int(headers[DEAD_LETTER_SIZE_HEADER]) > TOPIC_LIMIT
    assert (result["state"], result["messages_sent"], result["messages_dead_lettered"], result["messages_failed"]) == (
        "success",
        ROWS - 1,
        1,
        0,
    )
    assert ti.xcoms["pstt_delivery"]["messages_dead_lettered"] == 1


def test_exactly_once_with_an_oversized_row_publishes_nothing_a_committed_reader_sees(
    shipments, kafka_bootstrap, consume
):
    topic = limited_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    with pytest.raises(DeliveryError, match=BIG_KEY):
        publisher(
            shipments,
            topic,
            delivery="exactly_once",
            producer_config=NO_COMPRESSION,
            run_marker_topic=f"pstt-run-markers-{uuid.uuid4().hex[:6]}",
        ).execute(context_for(ti))

    assert ti.xcoms["pstt_delivery"]["state"] == "failed"
    assert consume(topic, isolation="read_committed") == []


def test_an_sql_error_in_a_query_file_names_the_file_and_the_database_message_and_produces_nothing(
    shipments, kafka_bootstrap, consume, tmp_path: Path
):
    topic = new_topic(kafka_bootstrap)
    query = tmp_path / "REL-002--ColonnaSbagliata.sql"
    query.write_text(
        "define DATA='2026-01-20'  --Obbligatorio: giorno\n"
        f"SELECT id, code, no_such_column FROM {shipments} WHERE note <> '&DATA';\n",
        encoding="utf-8",
    )
    ti = RecordingTaskInstance()

    with pytest.raises(SourceQueryError) as failure:
        SqlToKafkaOperator(
            task_id="publish", conn_id="pstt_test_pg", sql_file=str(query), topic=topic, message_key_field="code"
        ).execute(context_for(ti))

    assert "REL-002--ColonnaSbagliata.sql" in str(failure.value)
    assert 'column "no_such_column" does not exist' in str(failure.value)
    assert (ti.xcoms["pstt_delivery"]["state"], ti.xcoms["pstt_delivery"]["messages_sent"]) == ("failed", 0)
    assert consume(topic, isolation="read_uncommitted") == []


def _reading_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "pstt-read-ahead"]


def test_an_sql_error_after_some_fetches_fails_the_run_and_keeps_what_was_sent_once(kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    with pytest.raises(SourceQueryError, match=r"<inline sql>: reading the result failed: .*division by zero"):
        SqlToKafkaOperator(
            task_id="publish",
            conn_id="pstt_test_pg",
            sql="SELECT g AS id, 1 / (g - 7000) AS ratio FROM generate_series(1, 10000) g",
            topic=topic,
            message_key_field="id",
            batch_size=1000,
        ).execute(context_for(ti))

    result = ti.xcoms["pstt_delivery"]
    assert (result["state"], result["rows"], result["messages_sent"], result["messages_failed"]) == (
        "failed",
        6000,
        6000,
        0,
    )
    keys = [int(record.key) for record in consume(topic, expected=6000)]
    assert sorted(keys) == list(range(1, 6001))
    assert _reading_threads() == []


def test_a_null_key_deep_in_the_result_names_its_row_and_stops_reading(kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    with pytest.raises(MessageKeyError, match=r"row 2500 has a NULL code"):
        SqlToKafkaOperator(
            task_id="publish",
            conn_id="pstt_test_pg",
            sql="SELECT NULLIF(g, 2500) AS code FROM generate_series(1, 1000000) g",
            topic=topic,
            message_key_field="code",
            batch_size=1000,
        ).execute(context_for(ti))

    result = ti.xcoms["pstt_delivery"]
    assert (result["state"], result["messages_sent"]) == ("failed", 2000)
    assert sorted(int(record.key) for record in consume(topic, expected=2000)) == list(range(1, 2001))
    assert _reading_threads() == []
