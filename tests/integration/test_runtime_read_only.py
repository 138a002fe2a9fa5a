"""
A query file that writes is refused by the source database itself, before anything changes.

Every case runs the operator on a query file that would drop, insert, delete, update or call a function that
writes, then looks at the source: the table and its rows are still there, the topic is empty, and the error
names the query file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.exceptions import SourceQueryError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.query_file import QueryFileError


def run_query_file(conn_id: str, topic: str, query: Path) -> RecordingTaskInstance:
    """Runs the query file, expecting the database to refuse it; returns the task instance with its result."""
    ti = RecordingTaskInstance()
    with pytest.raises(SourceQueryError, match=rf"{query.name}: .*read-?only") as failure:
        SqlToKafkaOperator(
            task_id="publish", conn_id=conn_id, sql_file=str(query), topic=topic, message_key_field="id"
        ).execute(context_for(ti))
    assert str(failure.value).startswith(str(query))
    return ti


def query_file(folder: Path, name: str, sql: str) -> Path:
    path = folder / f"ADV-001--{name}.sql"
    path.write_text(f"{sql};\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------- SQLite


@pytest.fixture
def sqlite_source(new_sqlite_source) -> tuple[str, Path]:
    """A SQLite file with table adv_drop (ids 1..3) behind a fresh Airflow connection: (conn_id, path)."""
    return new_sqlite_source("adv_drop (id INTEGER, note TEXT)", [(n, f"row {n}") for n in (1, 2, 3)])


def sqlite_rows(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, note FROM adv_drop ORDER BY id").fetchall()
    finally:
        db.close()


ORIGINAL_ROWS = [(1, "row 1"), (2, "row 2"), (3, "row 3")]


def refused_before_any_database(conn_id: str, topic: str, query: Path, keyword: str) -> RecordingTaskInstance:
    """Runs the query file, expecting the query-file check to refuse it before it reaches the database."""
    ti = RecordingTaskInstance()
    with pytest.raises(QueryFileError, match=rf"{query.name}: the statement starts with {keyword}, not SELECT"):
        SqlToKafkaOperator(
            task_id="publish", conn_id=conn_id, sql_file=str(query), topic=topic, message_key_field="id"
        ).execute(context_for(ti))
    return ti


@pytest.mark.parametrize(
    ("keyword", "sql"),
    [
        ("DROP", "DROP TABLE adv_drop"),
        ("INSERT", "INSERT INTO adv_drop VALUES (4, 'new') RETURNING id"),
        ("UPDATE", "UPDATE adv_drop SET note = 'changed' RETURNING id"),
        ("BEGIN", "BEGIN DELETE FROM adv_drop; END"),
    ],
)
def test_sqlite_statement_that_is_not_a_query_is_refused_and_the_table_stays(
    sqlite_source, topic, consume, tmp_path, keyword, sql
):
    conn_id, path = sqlite_source

    ti = refused_before_any_database(conn_id, topic, query_file(tmp_path, keyword.title(), sql), keyword)

    assert sqlite_rows(path) == ORIGINAL_ROWS
    assert consume(topic) == []
    assert (ti.xcoms["pstt_delivery"]["state"], ti.xcoms["pstt_delivery"]["messages_sent"]) == ("failed", 0)


def test_sqlite_cte_feeding_a_delete_is_refused_by_the_database_and_sends_nothing(
    sqlite_source, topic, consume, tmp_path
):
    conn_id, path = sqlite_source
    sql = "WITH doomed AS (SELECT id FROM adv_drop WHERE id < 3) DELETE FROM adv_drop WHERE id IN doomed RETURNING id"

    run_query_file(conn_id, topic, query_file(tmp_path, "CteDelete", sql))

    assert sqlite_rows(path) == ORIGINAL_ROWS
    assert consume(topic) == []


# ------------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_table(pg_conn, new_pg_table) -> Iterator[str]:
    """A table (ids 1..3), a volatile function that inserts into it, and a sequence; all dropped afterwards."""
    table = new_pg_table("pstt_ro", "AS SELECT g AS id, 'row ' || g AS note FROM generate_series(1, 3) g")
    pg_conn.execute(
        f"CREATE FUNCTION {table}_write() RETURNS int LANGUAGE sql VOLATILE "
        f"AS $$ INSERT INTO {table} VALUES (99, 'written') RETURNING id $$"
    )
    pg_conn.execute(f"CREATE SEQUENCE {table}_seq")
    yield table
    pg_conn.execute(f"DROP FUNCTION IF EXISTS {table}_write()")
    pg_conn.execute(f"DROP SEQUENCE IF EXISTS {table}_seq")


def pg_rows(pg_conn, table: str) -> list[tuple]:
    return pg_conn.execute(f"SELECT id, note FROM {table} ORDER BY id").fetchall()


def test_postgres_query_that_drops_a_table_is_refused_and_the_table_stays(pg_table, pg_conn, topic, consume, tmp_path):
    refused_before_any_database("pstt_test_pg", topic, query_file(tmp_path, "Drop", f"DROP TABLE {pg_table}"), "DROP")

    assert pg_rows(pg_conn, pg_table) == ORIGINAL_ROWS
    assert consume(topic) == []


def test_postgres_data_modifying_cte_is_refused_and_the_rows_stay(pg_table, pg_conn, topic, consume, tmp_path):
    query = query_file(tmp_path, "CteDelete", f"WITH d AS (DELETE FROM {pg_table} RETURNING *) SELECT * FROM d")

    with pytest.raises(SourceQueryError, match=rf"{query.name}: the database rejected the query"):
        SqlToKafkaOperator(
            task_id="publish", conn_id="pstt_test_pg", sql_file=str(query), topic=topic, message_key_field="id"
        ).execute(context_for(RecordingTaskInstance()))

    assert pg_rows(pg_conn, pg_table) == ORIGINAL_ROWS
    assert consume(topic) == []


def test_postgres_select_calling_a_function_that_writes_is_refused_and_sends_nothing(
    pg_table, pg_conn, topic, consume, tmp_path
):
    ti = run_query_file("pstt_test_pg", topic, query_file(tmp_path, "Function", f"SELECT {pg_table}_write() AS id"))

    assert "cannot execute INSERT in a read-only transaction" in str(ti.xcoms["pstt_delivery"]["errors"][0])
    assert pg_rows(pg_conn, pg_table) == ORIGINAL_ROWS
    assert consume(topic) == []
    assert ti.xcoms["pstt_delivery"]["messages_sent"] == 0


def test_postgres_select_advancing_a_sequence_is_refused_and_the_sequence_stays(
    pg_table, pg_conn, topic, consume, tmp_path
):
    run_query_file("pstt_test_pg", topic, query_file(tmp_path, "Sequence", f"SELECT nextval('{pg_table}_seq') AS id"))

    assert pg_conn.execute(f"SELECT is_called FROM {pg_table}_seq").fetchone() == (False,)
    assert consume(topic) == []


def test_postgres_read_only_session_still_streams_a_plain_select(pg_table, topic, consume):
    result = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT id, note FROM {pg_table} ORDER BY id",
        topic=topic,
        message_key_field="id",
        include_metadata=False,
    ).execute(context_for(RecordingTaskInstance()))

    assert [json.loads(r.value) for r in consume(topic, expected=3)] == [
        {"id": n, "note": f"row {n}"} for n in (1, 2, 3)
    ]
    assert (result["rows"], result["messages_sent"]) == (3, 3)
