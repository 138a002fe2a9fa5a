"""
Non-finite floats reach Kafka as the strings "NaN", "Infinity" and "-Infinity", never as null.

JSON has no NaN or Infinity; written as null they would be indistinguishable from SQL NULL. The messages are
read back from the broker: PostgreSQL float8, float4 and float8[] (NaN inside an array too), and SQLite REAL,
which holds infinities but stores NaN as NULL itself.
"""

from __future__ import annotations

import json
import uuid

import pytest
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator


def publish(conn_id: str, sql: str, topic: str) -> dict:
    return SqlToKafkaOperator(
        task_id="publish", conn_id=conn_id, sql=sql, topic=topic, message_key_field="id", include_metadata=False
    ).execute(context_for(RecordingTaskInstance()))


def read_back(consume, topic: str, expected: int) -> dict[int, dict]:
    return {int(record.key): json.loads(record.value) for record in consume(topic, expected=expected)}


def test_postgres_float_nan_and_infinity_arrive_as_strings_and_null_stays_null(pg_conn, topic, consume):
    table = f"pstt_floats_{uuid.uuid4().hex[:10]}"
    pg_conn.execute(f"CREATE TABLE {table} (id int, ratio float8, ratio4 float4, samples float8[], label text)")
    pg_conn.execute(
        f"""INSERT INTO {table} VALUES
            (1, 'NaN', 'NaN', ARRAY['NaN', '1.5']::float8[], 'NaN'),
            (2, 'Infinity', 'Infinity', ARRAY['Infinity']::float8[], 'x'),
            (3, '-Infinity', '-Infinity', ARRAY[ARRAY['-Infinity', '0.5'], ARRAY['2', 'NaN']]::float8[], 'y'),
            (4, NULL, NULL, ARRAY[NULL, '2.5']::float8[], NULL),
            (5, 0.1, 0.5, NULL, 'null')"""
    )
    try:
        result = publish("pstt_test_pg", f"SELECT id, ratio, ratio4, samples, label FROM {table} ORDER BY id", topic)
    finally:
        pg_conn.execute(f"DROP TABLE {table}")

    rows = read_back(consume, topic, 5)
    assert rows == {
        1: {"id": 1, "ratio": "NaN", "ratio4": "NaN", "samples": ["NaN", 1.5], "label": "NaN"},
        2: {"id": 2, "ratio": "Infinity", "ratio4": "Infinity", "samples": ["Infinity"], "label": "x"},
        3: {
            "id": 3,
            "ratio": "-Infinity",
            "ratio4": "-Infinity",
            "samples": [["-Infinity", 0.5], [2.0, "NaN"]],
            "label": "y",
        },
        4: {"id": 4, "ratio": None, "ratio4": None, "samples": [None, 2.5], "label": None},
        5: {"id": 5, "ratio": 0.1, "ratio4": 0.5, "samples": None, "label": "null"},
    }
    assert (result["rows"], result["messages_sent"]) == (5, 5)


def test_postgres_float_specials_match_numeric_specials_in_the_same_message(topic, consume):
    publish(
        "pstt_test_pg",
        "SELECT n AS id, v::float8 AS as_float, v::numeric AS as_numeric "
        "FROM unnest(ARRAY['NaN', 'Infinity', '-Infinity']) WITH ORDINALITY AS t(v, n)",
        topic,
    )

    rows = read_back(consume, topic, 3)
    assert [(rows[n]["as_float"], rows[n]["as_numeric"]) for n in (1, 2, 3)] == [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
    ]


@pytest.fixture
def sqlite_floats(new_sqlite_source) -> str:
    """SQLite REAL values: infinities, NULL, a NaN (which SQLite stores as NULL) and a finite number."""
    rows = [
        (1, float("inf"), "up"),
        (2, float("-inf"), "down"),
        (3, None, "NaN"),
        (4, float("nan"), None),
        (5, 2.5, "ok"),
    ]
    return new_sqlite_source("readings (id INTEGER, ratio REAL, label TEXT)", rows).conn_id


def test_sqlite_infinities_arrive_as_strings_and_null_stays_null(sqlite_floats, topic, consume):
    result = publish(sqlite_floats, "SELECT id, ratio, label FROM readings ORDER BY id", topic)

    rows = read_back(consume, topic, 5)
    assert [(rows[n]["ratio"], rows[n]["label"]) for n in range(1, 6)] == [
        ("Infinity", "up"),
        ("-Infinity", "down"),
        (None, "NaN"),
        (None, None),
        (2.5, "ok"),
    ]
    assert result["messages_sent"] == 5


def test_sqlite_expression_that_overflows_to_infinity_arrives_as_a_string(sqlite_floats, topic, consume):
    publish(sqlite_floats, "SELECT id, ratio * 1e308 AS scaled FROM readings WHERE id = 5", topic)

    assert read_back(consume, topic, 1) == {5: {"id": 5, "scaled": "Infinity"}}
