"""
Incremental runs against real PostgreSQL and the real broker: each run reads only the rows after the job's stored
position, and what a read_committed consumer finally holds is every row, once.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter

import pytest
from helpers.operator_context import RecordingTaskInstance, context_for, retry_of

from pstt_provider.exceptions import MessageKeyError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator


def job(table: str, topic: str, **kwargs) -> SqlToKafkaOperator:
    arguments = {
        "task_id": "publish",
        "conn_id": "pstt_test_pg",
        "sql": f"SELECT id, code, updated_at FROM {table}",
        "topic": topic,
        "message_key_field": "code",
        "batch_size": 100,
        "incremental": {"column": "updated_at", "tiebreaker": "id"},
        **kwargs,
    }
    return SqlToKafkaOperator(**arguments)


def new_run(dag_id: str) -> RecordingTaskInstance:
    return RecordingTaskInstance(dag_id=dag_id)


def keys(records) -> Counter:
    return Counter(record.key.decode() for record in records)


@pytest.fixture
def dag_id() -> str:
    """A job of the test's own: positions are kept per dag_id/task_id in the shared state topic."""
    return f"pstt_incremental_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def events(new_pg_table) -> str:
    return new_pg_table("pstt_incr", "(id int PRIMARY KEY, code text NOT NULL, updated_at timestamptz NOT NULL)")


def insert(pg_conn, table: str, first: int, last: int, at: str) -> None:
    """Rows ``first``..``last`` (codes E<id>) stamped ``at`` (a PostgreSQL expression)."""
    pg_conn.execute(f"INSERT INTO {table} SELECT g, 'E' || g, {at} FROM generate_series({first}, {last}) g")


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_two_incremental_runs_deliver_disjoint_sets_whose_union_is_every_row(
    delivery, events, pg_conn, topic, consume, dag_id
):
    insert(pg_conn, events, 1, 300, "now() - interval '1 hour' + g * interval '1 second'")
    first = job(events, topic, delivery=delivery).execute(context_for(new_run(dag_id)))
    insert(pg_conn, events, 301, 500, "now() - interval '10 minutes' + g * interval '1 millisecond'")
    second = job(events, topic, delivery=delivery).execute(context_for(new_run(dag_id)))

    delivered = keys(consume(topic, expected=500))
    assert delivered == Counter(f"E{n}" for n in range(1, 501))
    assert (first["rows"], second["rows"]) == (300, 200)
    assert first["position_before"] is None
    assert first["position_after"]["id"] == 300
    assert second["position_before"] == first["position_after"]
    assert second["position_after"]["id"] == 500


@pytest.mark.parametrize("checkpoint_rows", [None, 1000])
def test_equal_timestamps_a_failure_after_2000_rows_and_a_retry_deliver_every_row_exactly_once(
    checkpoint_rows, new_pg_table, pg_conn, topic, consume, dag_id
):
    table = new_pg_table(
        "pstt_ties",
        "AS SELECT g AS id, CASE WHEN g = 2001 THEN NULL ELSE 'T' || g END AS code, "
        "timestamptz '2026-01-20 00:00:00+00' + ((g - 1) / 1000) * interval '1 hour' AS updated_at "
        "FROM generate_series(1, 5000) g",
    )
    assert pg_conn.execute(f"SELECT count(DISTINCT updated_at) FROM {table}").fetchone()[0] == 5
    first = new_run(dag_id)
    export = job(table, topic, delivery="exactly_once", checkpoint_rows=checkpoint_rows)
    with pytest.raises(MessageKeyError, match="row 2001 has a NULL code"):
        export.execute(context_for(first))
    committed = 2000 if checkpoint_rows else 0
    assert first.xcoms["pstt_delivery"]["messages_sent"] == committed

    pg_conn.execute(f"UPDATE {table} SET code = 'T2001' WHERE id = 2001")
    retry = job(table, topic, delivery="exactly_once", checkpoint_rows=checkpoint_rows).execute(
        context_for(retry_of(first))
    )

    assert keys(consume(topic, expected=5000)) == Counter(f"T{n}" for n in range(1, 5001))
    assert retry["rows"] == 5000 - committed
    assert retry["position_after"] == {"updated_at": "2026-01-20T04:00:00+00:00", "id": 5000}


LAG_S = 3


def wait_until_older_than_the_lag(pg_conn, table: str) -> None:
    """Until the database's clock has passed every row's timestamp by LAG_S: then no row is inside the lag."""
    deadline = time.monotonic() + 60
    while pg_conn.execute(f"SELECT max(updated_at) > now() - {LAG_S} * interval '1 second' FROM {table}").fetchone()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_row_committed_late_inside_lag_seconds_is_delivered_by_the_next_run(events, pg_conn, topic, consume, dag_id):
    incremental = {"column": "updated_at", "tiebreaker": "id", "lag_seconds": LAG_S}
    insert(pg_conn, events, 1, 10, "now() - interval '1 hour'")
    # Stamped a few seconds ahead of the database's clock: inside the lag for the first run, however late it starts.
    insert(pg_conn, events, 11, 11, "now() + interval '5 seconds'")
    assert job(events, topic, incremental=incremental).execute(context_for(new_run(dag_id)))["rows"] == 10
    # A transaction that stamped its row before row 11 but committed after the first run read.
    insert(pg_conn, events, 12, 12, f"(SELECT updated_at - interval '1 second' FROM {events} WHERE id = 11)")
    wait_until_older_than_the_lag(pg_conn, events)
    second = job(events, topic, incremental=incremental).execute(context_for(new_run(dag_id)))

    assert second["rows"] == 2
    assert keys(consume(topic, expected=12)) == Counter(f"E{n}" for n in range(1, 13))


def test_lag_seconds_0_skips_a_row_committed_late_with_an_older_timestamp(events, pg_conn, topic, consume, dag_id):
    """What docs/reliability.md says lag 0 gives up: the late row sorts before the position and is never read."""
    insert(pg_conn, events, 1, 10, "now() - interval '1 hour'")
    insert(pg_conn, events, 11, 11, "now() - interval '1 second'")
    lagless = {"column": "updated_at", "tiebreaker": "id", "lag_seconds": 0}
    assert job(events, topic, incremental=lagless).execute(context_for(new_run(dag_id)))["rows"] == 11
    insert(pg_conn, events, 12, 12, f"(SELECT updated_at - interval '1 second' FROM {events} WHERE id = 11)")
    assert job(events, topic, incremental=lagless).execute(context_for(new_run(dag_id)))["rows"] == 0

    assert "E12" not in keys(consume(topic, expected=11))


def test_the_query_files_own_where_clause_and_binds_stay_in_force(events, pg_conn, topic, consume, dag_id, tmp_path):
    insert(pg_conn, events, 1, 40, "now() - interval '1 hour' + g * interval '1 second'")
    query = tmp_path / "events.sql"
    query.write_text(
        "define PREFIX='E1'  --Obbligatorio: codes starting with\n"
        f"SELECT id, code, updated_at FROM {events} WHERE code LIKE '&PREFIX' || '%' ORDER BY code DESC;\n"
    )
    export = job(events, topic, sql=None, sql_file=str(query), incremental={"column": "id", "initial": 5})

    result = export.execute(context_for(new_run(dag_id)))

    # E1 and E10..E19 match the file's WHERE; E1 (id 1) is before initial; the window orders by id.
    assert [record.key.decode() for record in consume(topic, expected=10)] == [f"E{n}" for n in range(10, 20)]
    assert result["rows"] == 10


def test_a_numeric_column_starts_at_initial_and_ignores_no_row_after_it(events, pg_conn, topic, consume, dag_id):
    insert(pg_conn, events, 1, 50, "now()")
    numeric = {"column": "id", "initial": 21}
    assert job(events, topic, incremental=numeric).execute(context_for(new_run(dag_id)))["rows"] == 30
    insert(pg_conn, events, 51, 60, "now() - interval '1 day'")  # an older timestamp does not matter here
    assert job(events, topic, incremental=numeric).execute(context_for(new_run(dag_id)))["rows"] == 10

    assert keys(consume(topic, expected=40)) == Counter(f"E{n}" for n in range(21, 61))


@pytest.mark.parametrize(
    ("sql_type", "first", "later", "lag_seconds"),
    [
        ("timestamp", "localtimestamp - interval '2 days'", "localtimestamp - interval '1 day'", 60),
        ("timestamptz", "now() - interval '2 days'", "now() - interval '1 day'", 60),
        ("date", "current_date - 20", "current_date - 10", 86_400),
        ("numeric(20, 4)", "1000.5", "2000.25", None),
        ("bigint", "10000000000", "20000000000", None),
    ],
)
def test_each_kind_of_column_carries_its_position_from_run_to_run(
    sql_type, first, later, lag_seconds, new_pg_table, pg_conn, topic, consume, dag_id
):
    table = new_pg_table("pstt_kinds", f"(id int PRIMARY KEY, code text NOT NULL, updated_at {sql_type} NOT NULL)")
    insert(pg_conn, table, 1, 30, first)
    incremental = {"column": "updated_at", "tiebreaker": "id", "lag_seconds": lag_seconds}
    runs = [job(table, topic, incremental=incremental).execute(context_for(new_run(dag_id)))]
    insert(pg_conn, table, 31, 45, later)
    runs.append(job(table, topic, incremental=incremental).execute(context_for(new_run(dag_id))))
    runs.append(job(table, topic, incremental=incremental).execute(context_for(new_run(dag_id))))

    assert [run["rows"] for run in runs] == [30, 15, 0]
    assert runs[2]["position_before"] == runs[2]["position_after"] == runs[1]["position_after"]
    assert keys(consume(topic, expected=45)) == Counter(f"E{n}" for n in range(1, 46))


def test_sqlite_text_timestamps_are_read_incrementally_with_a_lag(new_sqlite_source, topic, consume, dag_id):
    source = new_sqlite_source(
        "events (id INTEGER PRIMARY KEY, code TEXT, updated_at TEXT)",
        [(n, f"S{n}", f"2026-01-20 10:00:{n:02d}.000") for n in range(1, 21)],
    )
    export = SqlToKafkaOperator(
        task_id="publish",
        conn_id=source.conn_id,
        sql="SELECT id, code, updated_at FROM events",
        topic=topic,
        message_key_field="code",
        incremental={"column": "updated_at", "tiebreaker": "id", "lag_seconds": 5, "initial": "2026-01-20 10:00:11"},
    )
    first = export.execute(context_for(new_run(dag_id)))
    with sqlite3.connect(source.path) as db:  # one row in the past, one stamped now: inside the lag
        db.execute(
            "INSERT INTO events VALUES (21, 'S21', '2026-01-20 11:00:00.000'), "
            "(22, 'S22', strftime('%Y-%m-%d %H:%M:%f', 'now'))"
        )
    second = export.execute(context_for(new_run(dag_id)))

    assert (first["rows"], second["rows"]) == (10, 1)
    assert second["position_after"] == {"updated_at": "2026-01-20 11:00:00.000", "id": 21}
    assert keys(consume(topic, expected=11)) == Counter(f"S{n}" for n in range(11, 22))


def test_an_at_least_once_retry_resumes_after_the_last_checkpoint_and_the_next_run_reads_everything(
    new_pg_table, pg_conn, topic, consume, dag_id
):
    table = new_pg_table(
        "pstt_full",
        "AS SELECT g AS id, CASE WHEN g = 2501 THEN NULL ELSE 'F' || g END AS code, now() AS updated_at "
        "FROM generate_series(1, 5000) g",
    )
    full_run = {"incremental": None, "order_by": ["id"], "checkpoint_rows": 1000}
    first = new_run(dag_id)
    with pytest.raises(MessageKeyError, match="row 2501 has a NULL code"):
        job(table, topic, **full_run).execute(context_for(first))
    assert first.xcoms["pstt_delivery"]["position_after"] == {"id": 2000}
    pg_conn.execute(f"UPDATE {table} SET code = 'F2501' WHERE id = 2501")

    retry = job(table, topic, **full_run).execute(context_for(retry_of(first)))
    next_run = job(table, topic, **full_run).execute(context_for(new_run(dag_id)))

    assert (retry["rows"], retry["position_before"], next_run["rows"]) == (3000, {"id": 2000}, 5000)
    delivered = keys(consume(topic, expected=2 * 5000 + 500))
    # The rows between the last checkpoint and the failure went out twice; none before it, none missing.
    assert delivered == Counter({f"F{n}": 3 if 2000 < n <= 2500 else 2 for n in range(1, 5001)})


@pytest.mark.parametrize(
    ("definition", "select", "named"),
    [
        (
            '("ID" int, "CODE" text, "UPDATED_AT" timestamptz)',
            'SELECT "ID", "CODE", "UPDATED_AT"',
            ("UPDATED_AT", "ID"),
        ),
        ("(id int, code text, updated_at timestamptz)", "SELECT id, code, updated_at", ("UPDATED_AT", "ID")),
        (
            '("ID" int, "CODE" text, "UPDATED_AT" timestamptz)',
            'SELECT "ID", "CODE", "UPDATED_AT"',
            ("updated_at", "id"),
        ),
    ],
    ids=[
        "quoted upper-case columns",
        "lower-case columns named in upper case",
        "upper-case columns named in lower case",
    ],
)
def test_order_columns_are_matched_as_the_result_spells_them(
    definition, select, named, new_pg_table, pg_conn, topic, consume, dag_id
):
    table = new_pg_table("pstt_case", definition)
    pg_conn.execute(f"INSERT INTO {table} SELECT g, 'E' || g, now() - interval '1 hour' FROM generate_series(1, 20) g")
    incremental = {"column": named[0], "tiebreaker": named[1]}
    export = job(table, topic, sql=f"{select} FROM {table}", message_key_field="code", incremental=incremental)

    first = export.execute(context_for(new_run(dag_id)))
    second = job(table, topic, sql=f"{select} FROM {table}", message_key_field="code", incremental=incremental)

    assert (first["rows"], second.execute(context_for(new_run(dag_id)))["rows"]) == (20, 0)
    assert keys(consume(topic, expected=20)) == Counter(f"E{n}" for n in range(1, 21))


def test_a_checkpoint_behind_a_full_producer_queue_waits_for_room(new_pg_table, topic, consume, dag_id):
    table = new_pg_table(
        "pstt_queue", "AS SELECT g AS id, 'Q' || g AS code, now() AS updated_at FROM generate_series(1, 3000) g"
    )
    # Each batch fills the queue to its limit and linger.ms keeps it full: the checkpoint's record finds no room.
    export = job(
        table,
        topic,
        incremental=None,
        order_by=["id"],
        checkpoint_rows=1000,
        batch_size=1000,
        delivery="exactly_once",
        producer_config={"queue.buffering.max.messages": 1000, "linger.ms": 500},
    )

    result = export.execute(context_for(new_run(dag_id)))

    assert (result["rows"], result["checkpoints"]) == (3000, 3)
    assert keys(consume(topic, expected=3000)) == Counter(f"Q{n}" for n in range(1, 3001))
