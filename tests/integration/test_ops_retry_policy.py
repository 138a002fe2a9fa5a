"""
The retry policy inside real Airflow DAG runs (dag.test: the Task SDK runner, which retries in-process).

An error a retry cannot fix uses one try whatever ``retries`` says; a broker outage uses them. Tries are counted
twice: the task instance's ``try_number`` and the delivery summaries the tries left for the metrics.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

from helpers.kafka import new_topic

DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2026, 1, 1)):
    SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql="SELECT g AS id, 'row ' || g AS label FROM generate_series(1, 50) g",
        topic="{topic}",
        message_key_field="{key}",
        kafka_config_id="{kafka_conn_id}",
        metadata_timeout_s=2,
        retries=2,
        retry_delay=dt.timedelta(seconds=1),
    )
"""


def run_dag(tmp_path: Path, **fields: str):
    """Writes, parses, serialises and test-runs a one-task DAG; returns (dag run, summaries of its tries)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models import Variable
    from airflow.utils.session import create_session

    from pstt_provider.summary import VARIABLE_PREFIX

    dag_id = f"pstt_ops_retry_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{dag_id}.py").write_text(DAG_FILE.format(dag_id=dag_id, **fields))
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(str(tmp_path))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)

    run = bag.get_dag(dag_id).test()

    with create_session() as session:
        values = session.query(Variable).filter(Variable.key.startswith(VARIABLE_PREFIX)).all()
        summaries = [json.loads(v.val) for v in values]
    return run, sorted((s for s in summaries if s["dag_id"] == dag_id), key=lambda s: s["try_number"])


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_missing_key_column_with_retries_2_runs_exactly_one_try_and_fails(
    airflow_db, postgres, kafka_bootstrap, tmp_path, consume
):
    topic = new_topic(kafka_bootstrap)

    run, summaries = run_dag(tmp_path, topic=topic, key="no_such_column", kafka_conn_id="kafka_default")

    ti = run.get_task_instance("publish")
    assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
    assert [s["try_number"] for s in summaries] == [1]
    assert summaries[0]["errors"][0].startswith("MessageKeyError: message key column 'no_such_column' is not in")
    assert consume(topic) == []


def test_a_broker_outage_is_retried_as_the_task_says(airflow_db, postgres, tmp_path, monkeypatch):
    conn_id = f"pstt_ops_down_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": f"127.0.0.1:{closed_port()}", "socket.connection.setup.timeout.ms": 1000}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))

    run, summaries = run_dag(tmp_path, topic="pstt-ops-nowhere", key="id", kafka_conn_id=conn_id)

    ti = run.get_task_instance("publish")
    assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 3)
    assert [s["try_number"] for s in summaries] == [1, 2, 3]
    assert all(s["errors"][0].startswith("BrokerUnreachableError: no broker answered") for s in summaries)


def test_a_good_run_with_retries_succeeds_on_its_first_try(airflow_db, postgres, kafka_bootstrap, tmp_path, consume):
    """The control: the same DAG with a key column that exists delivers every row on try 1."""
    topic = new_topic(kafka_bootstrap)

    run, summaries = run_dag(tmp_path, topic=topic, key="id", kafka_conn_id="kafka_default")

    ti = run.get_task_instance("publish")
    assert (run.state, ti.try_number) == ("success", 1)
    assert [(s["try_number"], s["state"], s["messages_sent"]) for s in summaries] == [(1, "success", 50)]
    assert sorted(int(r.key) for r in consume(topic, expected=50)) == list(range(1, 51))
