"""
``metadata='headers'``: each message's value is the row object alone, exactly what ``metadata='none'`` sends, and
the run's metadata travels in UTF-8 headers ``pstt-<field>``; rows diverted to the dead-letter topic carry them too.
Read back from the broker, message by message.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.delivery import DEAD_LETTER_ERROR_HEADER, DEAD_LETTER_SIZE_HEADER, DEAD_LETTER_TOPIC_HEADER
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.query_file import INLINE_SQL

ROWS = [(1, "alpha", 10.5), (2, "beta", None), (3, "gamma è", -1.0)]


def expected_headers(ti: RecordingTaskInstance, result: dict) -> dict[str, bytes]:
    extracted_at = dt.datetime.fromisoformat(result["started_at"]).astimezone(dt.UTC).isoformat()
    return {
        "pstt-schema-version": b"1.0",
        "pstt-system": b"pstt-provider",
        "pstt-dag-id": ti.dag_id.encode(),
        "pstt-run-id": ti.run_id.encode(),
        "pstt-task-id": ti.task_id.encode(),
        "pstt-query": INLINE_SQL.encode(),
        "pstt-extracted-at": extracted_at.encode(),
    }


def publish(conn_id: str, sql: str, topic: str, metadata: str, ti: RecordingTaskInstance, **kwargs) -> dict:
    return SqlToKafkaOperator(
        task_id="publish", conn_id=conn_id, sql=sql, topic=topic, message_key_field="id", metadata=metadata, **kwargs
    ).execute(context_for(ti))


def test_postgres_rows_arrive_as_row_objects_with_the_metadata_in_headers(pg_conn, kafka_bootstrap, consume):
    table = f"pstt_headers_{uuid.uuid4().hex[:10]}"
    pg_conn.execute(f"CREATE TABLE {table} (id int, name text, amount float8)")
    with pg_conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", ROWS)
    sql = f"SELECT id, name, amount FROM {table} ORDER BY id"
    with_headers, plain = new_topic(kafka_bootstrap), new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()
    try:
        result = publish("pstt_test_pg", sql, with_headers, "headers", ti)
        publish("pstt_test_pg", sql, plain, "none", RecordingTaskInstance())
    finally:
        pg_conn.execute(f"DROP TABLE {table}")

    records = consume(with_headers, expected=len(ROWS))
    assert {int(r.key): json.loads(r.value) for r in records} == {
        id_: {"id": id_, "name": name, "amount": amount} for id_, name, amount in ROWS
    }
    assert {r.key: r.value for r in records} == {r.key: r.value for r in consume(plain, expected=len(ROWS))}
    headers = expected_headers(ti, result)
    for record in records:
        assert record.headers == list(headers.items()), record.key
    assert (result["state"], result["rows"], result["messages_sent"]) == ("success", len(ROWS), len(ROWS))


def test_a_dead_letter_carries_the_metadata_headers_after_its_own(new_sqlite_source, kafka_bootstrap, consume):
    huge = "x" * 30_000
    conn_id = new_sqlite_source("shipments (id INTEGER, note TEXT)", [(1, "ok"), (2, huge), (3, "ok")]).conn_id
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": "10000"})
    dead_letters = new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    result = publish(
        conn_id, "SELECT id, note FROM shipments ORDER BY id", topic, "headers", ti, dead_letter_topic=dead_letters
    )

    [diverted] = consume(dead_letters, expected=1)
    assert (diverted.key, json.loads(diverted.value)) == (b"2", {"id": 2, "note": huge})
    names = [name for name, _ in diverted.headers]
    assert names[:3] == [DEAD_LETTER_ERROR_HEADER, DEAD_LETTER_TOPIC_HEADER, DEAD_LETTER_SIZE_HEADER]
    assert diverted.headers[3:] == list(expected_headers(ti, result).items())
    delivered = consume(topic, expected=2)
    assert [(r.key, json.loads(r.value)) for r in delivered] == [
        (b"1", {"id": 1, "note": "ok"}),
        (b"3", {"id": 3, "note": "ok"}),
    ]
    assert all(r.headers == list(expected_headers(ti, result).items()) for r in delivered)
    assert (result["messages_sent"], result["messages_dead_lettered"]) == (2, 1)
