"""
Hostile parameter values are data, never SQL: each one selects exactly the row whose text equals it.

The query file uses the SQL*Plus reference forms users write (``'&NAME'``, ``&NAME.``, ``:NAME``); the
operator binds them in psycopg's paramstyle. Were a value spliced into the SQL text, ``' OR '1'='1`` would
publish every row and ``'; DROP TABLE ...`` would drop the table: both are checked against Kafka and the DB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

HOSTILE = [
    "x' OR '1'='1",
    "' OR '1'='1",
    "a'; DROP TABLE {table}; --",
    "note -- trailing comment",
    "/* block */ note",
    "semi;colon",
    'double "quoted" and \\backslash',
    "&OTHER and :OTHER",
    "100% _wild_",
]
INNOCENT = ["1", "x", "a", "note", "plain text"]


@pytest.fixture
def notes_table(pg_conn, new_pg_table) -> str:
    table = new_pg_table("pstt_binds", "(id integer PRIMARY KEY, note text NOT NULL)")
    texts = [*(value.format(table=table) for value in HOSTILE), *INNOCENT]
    with pg_conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(enumerate(texts, start=1)))
    return table


def query_file(tmp_path: Path, table: str, reference: str) -> Path:
    path = tmp_path / "SEC-001--Binds.sql"
    path.write_text(
        "-- one row by its exact text\n"
        "define NOTE='none'  --Obbligatorio: testo esatto\n"
        f"SELECT id, note FROM {table} WHERE note = {reference} ORDER BY id;\n",
        encoding="utf-8",
    )
    return path


CASES = [
    *((value, "'&NOTE'") for value in HOSTILE),
    *((value, reference) for value in HOSTILE[:3] for reference in (":NOTE", "&&NOTE.")),
]


@pytest.mark.parametrize(("hostile", "reference"), CASES)
def test_a_hostile_value_selects_only_the_row_equal_to_it(
    hostile, reference, notes_table, pg_conn, tmp_path, topic, consume
):
    value = hostile.format(table=notes_table)
    operator = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql_file=str(query_file(tmp_path, notes_table, reference)),
        parameters={"NOTE": value},
        topic=topic,
        message_key_field="id",
        include_metadata=False,
    )

    result = operator.execute(context_for(RecordingTaskInstance()))

    records = consume(topic, expected=1)
    assert [json.loads(r.value)["note"] for r in records] == [value]
    assert (result["rows"], result["messages_sent"]) == (1, 1)
    assert pg_conn.execute(f"SELECT count(*) FROM {notes_table}").fetchone()[0] == len(HOSTILE) + len(INNOCENT)


def test_an_injection_that_matches_no_row_publishes_nothing(notes_table, pg_conn, tmp_path, topic, consume):
    operator = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql_file=str(query_file(tmp_path, notes_table, "'&NOTE'")),
        parameters={"NOTE": "nothing' OR 'a'='a"},
        topic=topic,
        message_key_field="id",
    )

    result = operator.execute(context_for(RecordingTaskInstance()))

    assert (result["rows"], result["messages_sent"]) == (0, 0)
    assert consume(topic) == []
