"""
The scaled-out deployment of ``make up-cluster`` (docs/scaling.md), started through scripts/airflow.sh as a
deployment of the module's own: CeleryExecutor on Redis, PostgreSQL metadata, two Celery workers, jobs
publishing to the three-broker cluster. Twenty jobs triggered together run on both workers and each delivers its
rows; a worker that crashes mid-task (SIGKILL to its whole process tree) is noticed through the task heartbeat
timeout and its task is retried on the other worker, exactly once or at least once as the job asks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from helpers.airflow_celery import CeleryDeployment
from helpers.broker_faults import Gate, numbered_keys, numbered_table, slowed_query
from helpers.kafka import consume_all
from helpers.kafka_cluster import KafkaCluster

JOBS = 20
ROWS = 3_000
KILL_ROWS = 12_000
GATE_ROW = 8_000
"""Past the first fetch (5,000 rows for PostgreSQL), so the crashed try has sent rows before it stops."""
HEARTBEAT_TIMEOUT_S = 30
DELIVERIES = ("exactly_once", "at_least_once")


def spec(name: str, topic: str, query: str, delivery: str, max_retries: int = 0) -> dict[str, Any]:
    return {
        "name": f"Celery {name}",
        "query": query,
        "connection": "pstt_test_pg",
        "scheduling_mode": "manual",
        "max_retries": max_retries,
        "retry_delay": 1,
        "kafka_config": {"topic": topic, "message_key_field": "code", "delivery": delivery},
    }


def new_cluster_topics(cluster: KafkaCluster, names: list[str]) -> None:
    from confluent_kafka.admin import NewTopic

    admin = cluster.admin()  # kept until the futures resolve: a collected client fails them
    futures = admin.create_topics([NewTopic(name, 3, 3) for name in names], operation_timeout=60)
    for future in futures.values():
        future.result(timeout=60)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, kafka_cluster: KafkaCluster, postgres: dict
) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("celery")
    jobs, queries = base / "jobs", base / "queries"
    jobs.mkdir()
    queries.mkdir()
    suffix = uuid.uuid4().hex[:8]
    with (
        kafka_cluster.exclusive(),  # the broker-fault tests crash its nodes: not while these jobs run
        numbered_table(postgres, "pstt_celery", ROWS) as table,
        numbered_table(postgres, "pstt_celery_kill", KILL_ROWS) as kill_table,
    ):
        (queries / "CEL-001--Numbered.sql").write_text(f"SELECT id, code FROM {table}\n")
        gates = {delivery: Gate(postgres, at_row=GATE_ROW) for delivery in DELIVERIES}
        topics = {f"load_{n:02d}": f"pstt-celery-{suffix}-load-{n:02d}" for n in range(JOBS)}
        specs = {name: spec(name, topic, "CEL-001--Numbered.sql", "at_least_once") for name, topic in topics.items()}
        for number, (delivery, gate) in enumerate(gates.items(), start=2):
            query = f"CEL-00{number}--Held{delivery.title().replace('_', '')}.sql"
            (queries / query).write_text(slowed_query(kill_table, "id, code", gate) + "\n")
            name = f"kill_{delivery}"
            topics[name] = f"pstt-celery-{suffix}-{name}"
            specs[name] = spec(name, topics[name], query, delivery, max_retries=2)
        new_cluster_topics(kafka_cluster, list(topics.values()))
        airflow = CeleryDeployment(
            base / "home",
            jobs,
            queries,
            env={
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__PSTT__SUMMARY_GRACE_S": "5",  # the killed try's record, without its summary, soon
            },
        )
        started = time.monotonic()
        try:
            airflow.start()
            for name, content in specs.items():
                (jobs / f"{name}.json").write_text(json.dumps(content))
            airflow.wait(lambda: all(airflow.dag_exists(f"pstt_{name}") for name in specs), 180, "the DAGs")
            print(f"\ndeployment up and {len(specs)} DAGs parsed in {time.monotonic() - started:.0f} s")
            yield {"airflow": airflow, "topics": topics, "gates": gates, "bootstrap": kafka_cluster.bootstrap}
        finally:
            for gate in gates.values():
                gate.open()
            airflow.stop()


def test_twenty_jobs_triggered_together_run_on_both_workers_and_deliver_every_row(
    deployment: dict[str, Any],
) -> None:
    airflow: CeleryDeployment = deployment["airflow"]
    dag_ids = [f"pstt_load_{n:02d}" for n in range(JOBS)]
    started = time.monotonic()
    with ThreadPoolExecutor(JOBS) as pool:
        run_ids = dict(zip(dag_ids, pool.map(airflow.trigger, dag_ids), strict=True))

    runs = {dag_id: airflow.finished_run(dag_id, timeout_s=300) for dag_id in dag_ids}
    print(f"\n{JOBS} DAG runs finished {time.monotonic() - started:.0f} s after the triggers")

    failed = {
        dag_id: airflow.task_log(dag_id, run["dag_run_id"]) for dag_id, run in runs.items() if run["state"] != "success"
    }
    assert not failed
    hosts = {dag_id: airflow.tries(dag_id, run_ids[dag_id], "export_to_kafka")[-1]["hostname"] for dag_id in dag_ids}
    assert set(hosts.values()) == {"worker1", "worker2"}, hosts
    expected = numbered_keys(ROWS)
    for n in range(JOBS):
        records = consume_all(deployment["topics"][f"load_{n:02d}"], bootstrap=deployment["bootstrap"], expected=ROWS)
        keys = [record.key for record in records]
        assert set(keys) == expected
        assert len(keys) == ROWS
    stored = airflow.wait(lambda: _stored(airflow, dag_ids), 120, "the metrics to store the 20 tries")
    assert {(t["dag_id"], t["state"], t["messages_sent"]) for t in stored} == {
        (dag_id, "success", ROWS) for dag_id in dag_ids
    }
    health = airflow.get("/pstt/api/health")
    assert health["metrics"]["runs"] >= JOBS
    assert health["metrics"]["messages_sent"] >= JOBS * ROWS


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_a_task_on_a_crashed_worker_is_retried_on_the_other_after_the_heartbeat_timeout(
    deployment: dict[str, Any], postgres: dict, delivery: str
) -> None:
    airflow: CeleryDeployment = deployment["airflow"]
    dag_id = f"pstt_kill_{delivery}"
    gate: Gate = deployment["gates"][delivery]
    run_id = airflow.trigger(dag_id)
    airflow.wait(lambda: _waits_at_gate(postgres, gate), 180, "the first try to reach the gate")
    [first] = airflow.tries(dag_id, run_id, "export_to_kafka")
    [other] = {"worker1", "worker2"} - {first["hostname"]}

    crashed_at = time.monotonic()
    airflow.crash_worker(first["hostname"])
    gate.open()  # the retry reads past the gate; the crashed try's session ends on its dead socket
    airflow.wait(lambda: len(airflow.tries(dag_id, run_id, "export_to_kafka")) > 1, 180, "the retried try")
    print(f"\nretry of {dag_id} started {time.monotonic() - crashed_at:.0f} s after the crash")
    run = airflow.finished_run(dag_id, timeout_s=240)
    airflow.start()  # the crashed worker back for the next test

    assert run["state"] == "success", airflow.task_log(dag_id, run_id)
    tries = airflow.tries(dag_id, run_id, "export_to_kafka")
    # Normally two tries; a third would mean the retry met a fault of the cluster's (no test makes one meanwhile).
    assert tries[0]["state"] == "failed"
    assert tries[-1]["state"] == "success"
    assert {t["hostname"] for t in tries[1:]} == {other}
    expected = numbered_keys(KILL_ROWS)
    records = consume_all(
        deployment["topics"][f"kill_{delivery}"], bootstrap=deployment["bootstrap"], expected=KILL_ROWS
    )
    keys = [record.key for record in records]
    print(f"{delivery}: {len(keys)} records for {KILL_ROWS} keys")
    assert set(keys) == expected
    if delivery == "exactly_once":
        assert len(keys) == KILL_ROWS
    else:
        stored = airflow.wait(
            lambda: _stored(airflow, [dag_id], count=len(tries)), 240, "the metrics to store every try"
        )
        by_try = {t["try_number"]: t for t in stored}
        assert by_try[1]["state"] == "failed"
        assert "killed, timed out or its worker was lost" in by_try[1]["errors"][0]
        last = by_try[tries[-1]["try_number"]]
        assert (last["state"], last["messages_sent"]) == ("success", KILL_ROWS)


def _waits_at_gate(postgres: dict, gate: Gate) -> bool:
    """A session of the task waits on the gate's advisory lock: the try is mid-run, with rows still to send."""
    with psycopg.connect(**postgres, autocommit=True) as conn:
        waiting = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (gate.key,),
        ).fetchone()
    return bool(waiting and waiting[0])


def _stored(airflow: CeleryDeployment, dag_ids: list[str], count: int = 1) -> list[dict[str, Any]] | None:
    """The tries the metrics store has of ``dag_ids`` once each has ``count`` of them."""
    found = [t for dag_id in dag_ids for t in airflow.get("/pstt/api/kafka/metrics/runs", dag_id=dag_id, limit=10)]
    per_dag = {dag_id: sum(t["dag_id"] == dag_id for t in found) for dag_id in dag_ids}
    return found if all(n >= count for n in per_dag.values()) else None
