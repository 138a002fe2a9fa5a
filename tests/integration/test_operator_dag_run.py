"""The operator inside a real Airflow DAG run (dag.test: the Task SDK runner, real XCom), not only execute()."""

from __future__ import annotations

import json
from pathlib import Path

DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

with DAG("pstt_operator_dag_run", schedule=None, start_date=dt.datetime(2026, 1, 1), params={{"last": 250}}):
    SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql="SELECT g AS id, 'row ' || g AS label FROM generate_series(1, :LAST) g",
        parameters={{"LAST": "{{{{ params.last }}}}"}},
        topic="{topic}",
        message_key_field="id",
    )
"""


def test_a_dag_run_publishes_the_rows_and_records_the_delivery_result(airflow_db, tmp_path: Path, topic, consume):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    (tmp_path / "operator_dag.py").write_text(DAG_FILE.format(topic=topic))
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(str(tmp_path))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)

    run = bag.get_dag("pstt_operator_dag_run").test()

    assert run.state == "success"
    records = consume(topic, expected=250)
    assert sorted(int(r.key) for r in records) == list(range(1, 251))
    assert json.loads(records[0].value)["metadata"]["run_id"] == run.run_id
    pushed = run.get_task_instance("publish").xcom_pull(task_ids="publish", key="pstt_delivery")
    assert (pushed["state"], pushed["rows"], pushed["messages_sent"]) == ("success", 250, 250)
