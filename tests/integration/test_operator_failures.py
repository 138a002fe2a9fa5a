from __future__ import annotations

import base64
import json
import os
import sqlite3

import pytest
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.delivery import DEAD_LETTER_ERROR_HEADER
from pstt_provider.exceptions import (
    BrokerUnreachableError,
    DeliveryError,
    MessageKeyError,
    MessageTooLargeError,
    SourceQueryError,
)
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator


@pytest.fixture
def sqlite_conn(new_sqlite_source) -> str:
    """A SQLite source with rows 1..20 (key ``id``, NULL keys at 5 and 12) behind the Airflow connection it returns."""
    rows = [(n, None if n in (5, 12) else f"S{n:03d}", "x" * 10) for n in range(1, 21)]
    return new_sqlite_source("shipments (id INTEGER, code TEXT, note TEXT)", rows).conn_id


INCOMPRESSIBLE = base64.b64encode(os.urandom(4000)).decode()
"""A note no compression codec shrinks below the 2000-byte topic limit used below."""


def operator(conn_id: str, topic: str, **kwargs) -> SqlToKafkaOperator:
    kwargs.setdefault("sql", "SELECT id, code, note FROM shipments ORDER BY id")
    kwargs.setdefault("message_key_field", "code")
    return SqlToKafkaOperator(task_id="publish", conn_id=conn_id, topic=topic, **kwargs)


def test_missing_key_column_fails_before_producing_naming_the_columns(sqlite_conn, topic, consume):
    ti = RecordingTaskInstance()

    with pytest.raises(MessageKeyError, match=r"'shipment_code'.*columns present: id, code, note"):
        operator(sqlite_conn, topic, message_key_field="shipment_code").execute(context_for(ti))

    assert consume(topic) == []
    assert ti.xcoms["pstt_delivery"]["state"] == "failed"
    assert ti.xcoms["pstt_delivery"]["messages_sent"] == 0


def test_null_key_fails_by_default_with_the_row_number(sqlite_conn, topic):
    ti = RecordingTaskInstance()

    with pytest.raises(MessageKeyError, match="row 5 has a NULL code"):
        operator(sqlite_conn, topic).execute(context_for(ti))

    assert ti.xcoms["pstt_delivery"]["state"] == "failed"
    assert "row 5" in ti.xcoms["pstt_delivery"]["errors"][0]


def test_null_key_skip_drops_and_counts_the_rows(sqlite_conn, topic, consume):
    result = operator(sqlite_conn, topic, null_key="skip").execute(context_for(RecordingTaskInstance()))

    records = consume(topic, expected=18)
    assert sorted(r.key for r in records) == sorted(f"S{n:03d}".encode() for n in range(1, 21) if n not in (5, 12))
    assert (result["rows"], result["messages_sent"], result["messages_skipped"]) == (20, 18, 2)


def test_null_key_null_sends_the_rows_without_a_key(sqlite_conn, topic, consume):
    result = operator(sqlite_conn, topic, null_key="null").execute(context_for(RecordingTaskInstance()))

    records = consume(topic, expected=20)
    assert [json.loads(r.value)["data"]["id"] for r in records if r.key is None] == [5, 12]
    assert result["messages_sent"] == 20


def test_sql_error_names_the_query_file_and_the_database_message(sqlite_conn, topic, tmp_path):
    query = tmp_path / "BAD-001--Broken.sql"
    query.write_text("SELECT id, code FROM no_such_table;\n")

    with pytest.raises(SourceQueryError, match=r"BAD-001--Broken\.sql.*no such table: no_such_table"):
        operator(sqlite_conn, topic, sql=None, sql_file=str(query)).execute(context_for(RecordingTaskInstance()))


def test_unreachable_broker_fails_within_the_metadata_timeout(sqlite_conn, topic, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_NOWHERE", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:1"}})
    )
    ti = RecordingTaskInstance()

    with pytest.raises(BrokerUnreachableError, match=r"no broker answered within 2 s: .*check bootstrap\.servers"):
        operator(sqlite_conn, topic, kafka_config_id="kafka_nowhere", metadata_timeout_s=2).execute(context_for(ti))

    assert ti.xcoms["pstt_delivery"]["state"] == "failed"


def test_messages_the_broker_rejects_fail_the_task_with_counts_and_first_errors(sqlite_conn, kafka_bootstrap):
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": "2000"})
    _set_note(sqlite_conn, 7, INCOMPRESSIBLE)
    ti = RecordingTaskInstance()

    with pytest.raises(
        DeliveryError, match=r"(\d+) of 18 message\(s\) .* not acknowledged \((\d+) acknowledged\)"
    ) as failure:
        operator(sqlite_conn, topic, null_key="skip", producer_config={"message.max.bytes": 1_000_000}).execute(
            context_for(ti)
        )

    assert "Message size too large" in str(failure.value)
    pushed = ti.xcoms["pstt_delivery"]
    assert pushed["state"] == "failed"
    assert pushed["messages_failed"] >= 1
    assert pushed["messages_sent"] + pushed["messages_failed"] == 18
    assert any("too large" in error.lower() for error in pushed["errors"])


def test_row_too_large_for_the_producer_fails_naming_its_key_and_size(sqlite_conn, topic):
    _set_note(sqlite_conn, 7, INCOMPRESSIBLE)

    with pytest.raises(MessageTooLargeError, match=r"key 'S007' is \d{4} bytes"):
        operator(sqlite_conn, topic, null_key="skip", producer_config={"message.max.bytes": 2000}).execute(
            context_for(RecordingTaskInstance())
        )


def test_row_too_large_goes_to_the_dead_letter_topic_with_the_error(sqlite_conn, kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": "2000"})
    dead_letters = new_topic(kafka_bootstrap)
    _set_note(sqlite_conn, 7, INCOMPRESSIBLE)

    result = operator(sqlite_conn, topic, null_key="skip", dead_letter_topic=dead_letters).execute(
        context_for(RecordingTaskInstance())
    )

    diverted = consume(dead_letters, expected=1)
    assert [r.key for r in diverted] == [b"S007"]
    assert json.loads(diverted[0].value)["data"]["note"] == INCOMPRESSIBLE
    headers = dict(diverted[0].headers)
    assert b"too large" in headers[DEAD_LETTER_ERROR_HEADER].lower()
    assert len(consume(topic, expected=17)) == 17
    assert (result["messages_sent"], result["messages_dead_lettered"], result["messages_failed"]) == (17, 1, 0)


def _conn_env(conn_id: str) -> str:
    return os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]


def _set_note(conn_id: str, row_id: int, note: str) -> None:
    db = sqlite3.connect(json.loads(_conn_env(conn_id))["host"])
    db.execute("UPDATE shipments SET note = ? WHERE id = ?", (note, row_id))
    db.commit()
    db.close()
