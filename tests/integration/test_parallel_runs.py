"""
Parallel runs on real Airflow, PostgreSQL and the broker: a split task plans ranges of one column, the export task
is mapped over them, and a read_committed consumer finally holds every key once, whatever part failed and retried.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections import Counter
from pathlib import Path

import pendulum
import pytest
from helpers.operator_context import RecordingTaskInstance, context_for, retry_of

from pstt_provider.exceptions import MessageKeyError
from pstt_provider.operators.split_ranges import SplitRangesOperator
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.splitting import SplitRange

ROWS = 1_000_000
FUSE_ID = 600_000
"""The row whose part fails on its first try: in the third of four ranges of 1..1,000,000."""


@pytest.fixture
def big_table(new_pg_table, pg_conn) -> str:
    table = new_pg_table(
        "pstt_par", f"AS SELECT g AS id, 'P' || lpad(g::text, 7, '0') AS code FROM generate_series(1, {ROWS}) g"
    )
    pg_conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
    return table


@pytest.fixture
def fuse(pg_conn) -> str:
    """``fuse(id, try)``: true, except that row FUSE_ID on a first try fails as a cancelled statement (transient)."""
    name = f"pstt_fuse_{uuid.uuid4().hex[:8]}"
    pg_conn.execute(
        f"""CREATE FUNCTION {name}(id int, try text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          IF id = {FUSE_ID} AND try = '1' THEN
            RAISE EXCEPTION 'injected failure of a first try' USING ERRCODE = '57014';
          END IF;
          RETURN true;
        END $$"""
    )
    yield name
    pg_conn.execute(f"DROP FUNCTION {name}(int, text)")


def parallel_dag(folder: Path, dag_id: str, table: str, fuse: str, topic: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dag_file = folder / f"{dag_id}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            import datetime as dt

            import pendulum
            from airflow.sdk import DAG

            from pstt_provider.operators.split_ranges import SplitRangesOperator
            from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

            SQL = "SELECT id, code FROM {table} WHERE {fuse}(id, :TRY)"
            with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
                ranges = SplitRangesOperator(
                    task_id="split_ranges", conn_id="pstt_test_pg", sql=SQL, parameters={{"TRY": "plan"}},
                    split_by="id", partitions=4,
                )
                SqlToKafkaOperator.partial(
                    task_id="export_to_kafka", conn_id="pstt_test_pg", sql=SQL,
                    parameters={{"TRY": "{{{{ ti.try_number }}}}"}}, topic="{topic}", message_key_field="code",
                    delivery="exactly_once", retries=1, retry_delay=dt.timedelta(0),
                    map_index_template="{{{{ task.split_range }}}}",
                ).expand(split_range=ranges.output)
            """
        )
    )
    return dag_file


def test_a_parallel_run_of_4_parts_delivers_every_key_exactly_once_and_a_failed_part_retries_alone(
    airflow_db, big_table, fuse, topic, consume, tmp_path, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.session import create_session

    from pstt_provider.metrics import aggregate, store

    dag_id = f"pstt_parallel_{uuid.uuid4().hex[:8]}"
    dag_file = parallel_dag(tmp_path / "dags", dag_id, big_table, fuse, topic)
    # dag.test() runs the DAG as the scheduler would, from a bundle: this test's folder is one of its own.
    bundle = {"name": dag_id, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps([{**bundle, "kwargs": {"path": str(dag_file.parent)}}]),
    )
    bag = DagBag(dag_folder=dag_file)
    assert bag.import_errors == {}
    moment = pendulum.now("UTC")

    run = bag.dags[dag_id].test(logical_date=moment, run_after=moment)

    assert run.state == "success"
    delivered = Counter(record.key for record in consume(topic, expected=ROWS, timeout_s=120))
    assert len(delivered) == ROWS
    assert set(delivered.values()) == {1}
    with create_session() as session:
        store.ingest(session)
        tries = store.tries(session, dag_id=dag_id)
    parts = sorted((item.map_index, item.try_number, item.state) for item in tries)
    assert parts == [(0, 1, "success"), (1, 1, "success"), (2, 1, "failed"), (2, 2, "success"), (3, 1, "success")]
    latest = [item for item in tries if item.state == "success"]
    assert sum(item.rows for item in latest) == sum(item.messages_sent for item in latest) == ROWS
    totals = aggregate.totals(tries)
    assert (totals["job_runs"], totals["failed_job_runs"], totals["messages_sent"]) == (1, 0, ROWS)
    assert totals["messages_aborted"] == next(item.messages_aborted for item in tries if item.state == "failed")


def test_the_ranges_keep_the_querys_own_where_clause_and_every_row_lands_in_exactly_one(
    new_pg_table, pg_conn, topic, consume
):
    table = new_pg_table("pstt_split", "(id int, code text NOT NULL, kind text)")
    pg_conn.execute(
        f"INSERT INTO {table} SELECT g, 'S' || g, CASE WHEN g % 3 = 0 THEN 'skip' ELSE 'keep' END "
        "FROM generate_series(1, 3000) g"
    )
    pg_conn.execute(f"INSERT INTO {table} VALUES (NULL, 'S-null', 'keep')")  # NULLs go to the first range
    sql = f"SELECT id, code FROM {table} WHERE kind = :KIND"
    plan = SplitRangesOperator(
        task_id="split", conn_id="pstt_test_pg", sql=sql, parameters={"KIND": "keep"}, split_by="id", partitions=3
    ).execute({})
    ti = RecordingTaskInstance(dag_id=f"pstt_split_{uuid.uuid4().hex[:8]}", task_id="export")
    results = []
    for part in plan:
        export = SqlToKafkaOperator(
            task_id="export",
            conn_id="pstt_test_pg",
            sql=sql,
            parameters={"KIND": "keep"},
            topic=topic,
            message_key_field="code",
            split_range=part,
        )
        results.append(
            export.execute(context_for(RecordingTaskInstance(ti.dag_id, ti.task_id, ti.run_id, 1, part["part"])))
        )

    # MIN and MAX are the query's own: 3000 is of kind 'skip', so the kept ids run from 1 to 2999.
    assert [str(SplitRange.of(part)) for part in plan] == [
        "part 1 of 3: id < 1001 (and NULL)",
        "part 2 of 3: 1001 <= id < 2000",
        "part 3 of 3: 2000 <= id",
    ]
    kept = {f"S{n}" for n in range(1, 3001) if n % 3} | {"S-null"}
    assert Counter(record.key.decode() for record in consume(topic, expected=len(kept))) == Counter(kept)
    assert sum(result["rows"] for result in results) == len(kept)


def test_a_part_retried_after_a_failure_resumes_after_its_own_checkpoint(new_pg_table, pg_conn, topic, consume):
    table = new_pg_table(
        "pstt_split_ckpt",
        "AS SELECT g AS id, CASE WHEN g = 3600 THEN NULL ELSE 'C' || g END AS code FROM generate_series(1, 4000) g",
    )
    sql = f"SELECT id, code FROM {table}"
    plan = SplitRangesOperator(task_id="split", conn_id="pstt_test_pg", sql=sql, split_by="id", partitions=2).execute(
        {}
    )
    dag_id = f"pstt_split_{uuid.uuid4().hex[:8]}"

    def export(part: dict) -> SqlToKafkaOperator:
        return SqlToKafkaOperator(
            task_id="export",
            conn_id="pstt_test_pg",
            sql=sql,
            topic=topic,
            message_key_field="code",
            batch_size=100,
            delivery="exactly_once",
            order_by=["id"],
            checkpoint_rows=500,
            split_range=part,
        )

    first = RecordingTaskInstance(dag_id=dag_id, task_id="export")
    export(plan[0]).execute(context_for(first))
    second = RecordingTaskInstance(dag_id, "export", first.run_id, 1, 1)
    with pytest.raises(MessageKeyError, match="NULL code"):
        export(plan[1]).execute(context_for(second))
    pg_conn.execute(f"UPDATE {table} SET code = 'C3600' WHERE id = 3600")
    retried = export(plan[1]).execute(context_for(retry_of(second)))

    assert (retried["position_before"], retried["rows"]) == ({"id": 3500}, 500)
    assert Counter(record.key.decode() for record in consume(topic, expected=4000)) == Counter(
        f"C{n}" for n in range(1, 4001)
    )
