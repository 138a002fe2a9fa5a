"""
``value_format='avro'`` and ``'json_schema'`` against the real Schema Registry, broker and PostgreSQL: the rows
read back through confluent-kafka's own deserializers equal what PostgreSQL holds, key by key; the schema evolves
when a nullable column is added and a run whose column changed type is refused before anything is produced.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from airflow.sdk.exceptions import AirflowFailException
from confluent_kafka import Consumer, TopicPartition
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for
from helpers.pstt_api_server import free_port
from helpers.schema_registry import SCHEMA_REGISTRY_CONN_ID, client, deserialized

from pstt_provider.exceptions import SchemaCompatibilityError, SchemaRegistryUnavailableError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.query_file import INLINE_SQL

COLUMNS = (
    "id bigint, amount numeric(20,4), big numeric(21,4), ts timestamp, tz timestamptz, day date, note text, "
    "raw bytea, flag boolean"
)
ROWS = [
    (
        1,
        "1234567890123456.7891",
        "12345678901234567.8901",
        "2024-02-29 23:59:59.999999",
        "2024-01-02 03:04:05.123456+02",
        "1969-12-31",
        "héllo ✓",
        b"\x00\xff\x10",
        True,
    ),
    (
        2,
        "-9999999999999999.9999",
        "-12345678901234567.8901",
        "1900-01-01 00:00:00.000001",
        "1999-12-31 23:59:59.999999-08",
        "2262-04-11",
        "",
        b"",
        False,
    ),
    (3, None, None, None, None, None, None, None, None),
]
FROM_JSON = {
    "amount": Decimal,
    "big": Decimal,
    "ts": dt.datetime.fromisoformat,
    "tz": dt.datetime.fromisoformat,
    "day": dt.date.fromisoformat,
    "raw": base64.b64decode,
}
"""How a json_schema value's strings become the PostgreSQL values: exact decimals, microsecond datetimes, bytes."""


@pytest.fixture
def table(new_pg_table, pg_conn) -> str:
    name = new_pg_table("pstt_formats", f"({COLUMNS})")
    with pg_conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(ROWS[0]))})", ROWS)
    return name


def held(pg_conn, sql: str) -> dict[int, dict]:
    """What PostgreSQL holds, read with psycopg's own types (Decimal, datetime, date, bytes), by id."""
    with pg_conn.cursor() as cursor:
        cursor.execute(sql)
        names = [column.name for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def publish(
    sql: str, topic: str, value_format: str, metadata: str = "none", ti=None, registry=SCHEMA_REGISTRY_CONN_ID
) -> dict:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=sql,
        topic=topic,
        message_key_field="id",
        metadata=metadata,
        value_format=value_format,
        schema_registry=registry,
    ).execute(context_for(ti or RecordingTaskInstance()))


def from_json(row: dict) -> dict:
    return {
        name: FROM_JSON[name](value) if value is not None and name in FROM_JSON else value
        for name, value in row.items()
    }


def end_offset(kafka_bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "pstt-offsets"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        consumer.close()


@pytest.mark.parametrize("value_format", ["avro", "json_schema"])
def test_rows_read_back_through_the_registry_equal_what_postgres_holds(
    value_format, table, pg_conn, kafka_bootstrap, schema_registry, topic, consume
):
    sql = f"SELECT * FROM {table} ORDER BY id"

    result = publish(sql, topic, value_format)

    records = consume(topic, expected=len(ROWS))
    values = deserialized(schema_registry, topic, [r.value for r in records], value_format)
    if value_format == "json_schema":
        values = [from_json(value) for value in values]
    assert {int(r.key): value for r, value in zip(records, values, strict=True)} == held(pg_conn, sql)
    assert (result["rows"], result["messages_sent"]) == (len(ROWS), len(ROWS))
    [subject] = [s for s in client(schema_registry).get_subjects() if s.startswith(topic)]
    assert subject == f"{topic}-value"


@pytest.mark.parametrize("value_format", ["avro", "json_schema"])
def test_an_envelope_carries_the_row_and_the_runs_metadata(
    value_format, table, pg_conn, kafka_bootstrap, schema_registry, topic, consume
):
    sql = f"SELECT * FROM {table} ORDER BY id"
    ti = RecordingTaskInstance()

    result = publish(sql, topic, value_format, "envelope", ti)

    records = consume(topic, expected=len(ROWS))
    values = deserialized(schema_registry, topic, [r.value for r in records], value_format)
    rows = held(pg_conn, sql)
    extracted_at = dt.datetime.fromisoformat(result["started_at"]).astimezone(dt.UTC).isoformat()
    for record, value in zip(records, values, strict=True):
        data = from_json(value["data"]) if value_format == "json_schema" else value["data"]
        assert data == rows[int(record.key)]
        assert value["metadata"] == {
            "schema_version": "1.0",
            "system": "pstt-provider",
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "query": INLINE_SQL,
            "extracted_at": extracted_at,
        }


def test_with_metadata_in_headers_the_avro_value_is_the_row_alone(
    table, pg_conn, kafka_bootstrap, schema_registry, topic, consume
):
    sql = f"SELECT * FROM {table} ORDER BY id"
    ti = RecordingTaskInstance()

    publish(sql, topic, "avro", "headers", ti)

    records = consume(topic, expected=len(ROWS))
    values = deserialized(schema_registry, topic, [r.value for r in records], "avro")
    assert {int(r.key): value for r, value in zip(records, values, strict=True)} == held(pg_conn, sql)
    assert all(dict(r.headers)["pstt-run-id"] == ti.run_id.encode() for r in records)


def test_a_new_nullable_column_is_version_two_and_a_retyped_column_is_refused_before_producing(
    table, pg_conn, kafka_bootstrap, schema_registry, consume
):
    topic = new_topic(kafka_bootstrap)
    subject = f"{topic}-value"
    registry = client(schema_registry)

    publish(f"SELECT id, note FROM {table} ORDER BY id", topic, "avro")
    publish(f"SELECT id, note, amount FROM {table} ORDER BY id", topic, "avro")

    assert registry.get_versions(subject) == [1, 2]
    second = consume(topic, expected=2 * len(ROWS))[len(ROWS) :]
    values = deserialized(schema_registry, topic, [r.value for r in second], "avro")
    assert {int(r.key): value for r, value in zip(second, values, strict=True)} == held(
        pg_conn, f"SELECT id, note, amount FROM {table} ORDER BY id"
    )

    before = end_offset(kafka_bootstrap, topic)
    with pytest.raises(SchemaCompatibilityError) as refused:
        publish(f"SELECT id, length(note)::bigint AS note, amount FROM {table} ORDER BY id", topic, "avro")

    message = str(refused.value)
    assert "column(s) changed: note" in message
    assert subject in message
    assert "BACKWARD" in message
    assert end_offset(kafka_bootstrap, topic) == before == 2 * len(ROWS)
    assert registry.get_versions(subject) == [1, 2]


def test_an_unreachable_registry_is_retried_and_nothing_is_produced(table, kafka_bootstrap, topic, monkeypatch):
    nobody = {"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}", "extra": {"max.retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_PSTT_NO_REGISTRY", json.dumps(nobody))

    with pytest.raises(SchemaRegistryUnavailableError, match=f"unreachable for subject {topic}-value") as raised:
        publish(f"SELECT * FROM {table}", topic, "avro", registry="pstt_no_registry")

    assert not isinstance(raised.value, AirflowFailException)
    assert end_offset(kafka_bootstrap, topic) == 0
