"""
Day one under the real scheduler (``airflow standalone``), not ``dag.test()``: a new enabled job runs its
first slot on a topic that does not exist yet without anyone touching the toggle; a retried try is counted
as the API server's writer finds it, with no read in between; an error a retry cannot fix is tried once;
and the UI has no plugin or DAG import errors.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from helpers.airflow_standalone import Standalone
from helpers.pstt_api_server import free_port

SOURCE_CONN = "pstt_day_one_sqlite"
QUERY = """\
define GIORNO='2026-01-19'  --Obbligatorio: giorno
SELECT CODE, DAY, STATUS FROM TRACES WHERE DAY = '&GIORNO' ORDER BY CODE;
"""
LATE_QUERY = QUERY.replace("FROM TRACES", "FROM LATE_TRACES")
ROWS = [("A1", "2026-01-19", "OK"), ("A2", "2026-01-19", "KO"), ("A3", "2026-01-19", "OK")]


def spec(name: str, topic: str, query: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": f"Day one {name}",
        "query": query,
        "connection": SOURCE_CONN,
        "scheduling_mode": "manual",
        "max_retries": 0,
        "retry_delay": 0,
        "parameters": {"GIORNO": "2026-01-19"},
        "kafka_config": {"topic": topic, "message_key_field": "CODE", "connection_name": "default"},
        **changes,
    }


@pytest.fixture(scope="module")
def day_one(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("day-one")
    jobs, queries = base / "jobs", base / "queries"
    jobs.mkdir()
    queries.mkdir()
    (queries / "DAY-001--Traces.sql").write_text(QUERY)
    (queries / "DAY-002--LateTraces.sql").write_text(LATE_QUERY)
    source = base / "source.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE TRACES (CODE TEXT, DAY TEXT, STATUS TEXT)")
        db.executemany("INSERT INTO TRACES VALUES (?, ?, ?)", ROWS)
    topics = {name: f"pstt-day-one-{name}-{uuid.uuid4().hex[:8]}" for name in ("cron", "retry", "nokey")}
    specs = {
        "cron": spec(
            "cron",
            topics["cron"],
            "DAY-001--Traces.sql",
            scheduling_mode="cron",
            cron="* * * * *",
            timezone="Europe/Rome",
        ),
        "retry": spec("retry", topics["retry"], "DAY-002--LateTraces.sql", max_retries=2, retry_delay=5),
        "nokey": spec(
            "nokey",
            topics["nokey"],
            "DAY-001--Traces.sql",
            max_retries=2,
            kafka_config={
                "topic": topics["nokey"],
                "message_key_field": "NO_SUCH_COLUMN",
                "connection_name": "default",
            },
        ),
        "disabled": spec(
            "disabled", topics["cron"], "DAY-001--Traces.sql", scheduling_mode="cron", cron="0 3 * * *", enabled=False
        ),
    }
    airflow = Standalone(
        base / "home",
        jobs,
        queries,
        free_port(),
        env={f"AIRFLOW_CONN_{SOURCE_CONN.upper()}": json.dumps({"conn_type": "sqlite", "host": str(source)})},
    )
    airflow.start()
    try:
        # Written once the API server answers: a first slot scheduled earlier would have its task's supervisor
        # refused by an API server still starting (on a loaded machine), which is standalone's race, not the job's.
        for name, content in specs.items():
            (jobs / f"{name}.json").write_text(json.dumps(content))
        airflow.wait(lambda: all(airflow.dag_exists(f"pstt_{name}") for name in specs), 180, "the DAGs to be parsed")
        yield {"airflow": airflow, "topics": topics, "source": source}
    finally:
        airflow.stop()


def test_a_new_enabled_job_runs_its_first_slot_on_a_new_topic_without_touching_the_toggle(
    day_one: dict[str, Any], consume: Callable[..., list]
) -> None:
    airflow: Standalone = day_one["airflow"]

    run = airflow.finished_run("pstt_cron")

    assert airflow.get("/api/v2/dags/pstt_cron")["is_paused"] is False
    assert airflow.serialized_timezone("pstt_cron") == "Europe/Rome"
    assert run["run_type"] == "scheduled"
    assert run["state"] == "success", airflow.task_log("pstt_cron", run["dag_run_id"])
    [only_try] = airflow.tries("pstt_cron", run["dag_run_id"], "export_to_kafka")
    assert only_try["try_number"] == 1
    # The job fires every minute, so a later slot may have delivered too: each run sends the three rows once.
    records = consume(day_one["topics"]["cron"], expected=3)
    assert {record.key for record in records} == {b"A1", b"A2", b"A3"}
    assert len(records) % 3 == 0


def test_a_disabled_job_is_created_paused(day_one: dict[str, Any]) -> None:
    airflow: Standalone = day_one["airflow"]
    assert airflow.get("/api/v2/dags/pstt_disabled")["is_paused"] is True


def test_a_retried_try_is_counted_by_the_writer_with_no_read_in_between(day_one: dict[str, Any]) -> None:
    airflow: Standalone = day_one["airflow"]
    run_id = airflow.trigger("pstt_retry")
    airflow.wait(
        lambda: airflow.task_state("pstt_retry", run_id) in ("up_for_retry", "failed"), 180, "the first try to fail"
    )
    with sqlite3.connect(day_one["source"]) as db:
        db.execute("CREATE TABLE LATE_TRACES (CODE TEXT, DAY TEXT, STATUS TEXT)")
        db.executemany("INSERT INTO LATE_TRACES VALUES (?, ?, ?)", ROWS)

    run = airflow.finished_run("pstt_retry")

    assert run["state"] == "success"
    tries = airflow.wait(lambda: _stored_tries(airflow, "pstt_retry", 2), 120, "the writer to store both tries")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert "no such table: LATE_TRACES" in tries[0]["errors"][0]
    assert tries[1]["messages_sent"] == 3
    health = json.loads(airflow.cli("pstt", "health", "--json").stdout)
    [failure] = [f for f in health["failures"] if f["dag_id"] == "pstt_retry"]
    assert (failure["run_id"], failure["try_number"], failure["display_name"]) == (run_id, 1, "Day one retry")
    assert "no such table: LATE_TRACES" in failure["error"]


def test_an_error_a_retry_cannot_fix_is_tried_once(day_one: dict[str, Any]) -> None:
    airflow: Standalone = day_one["airflow"]
    airflow.trigger("pstt_nokey")

    run = airflow.finished_run("pstt_nokey")

    assert run["state"] == "failed"
    tries = airflow.tries("pstt_nokey", run["dag_run_id"], "export_to_kafka")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed")]
    assert "message key column 'NO_SUCH_COLUMN' is not in the query result" in airflow.task_log(
        "pstt_nokey", run["dag_run_id"]
    )


def test_the_ui_has_no_plugin_or_dag_import_errors(day_one: dict[str, Any]) -> None:
    airflow: Standalone = day_one["airflow"]
    assert airflow.get("/api/v2/plugins/importErrors")["total_entries"] == 0
    assert airflow.get("/api/v2/importErrors")["total_entries"] == 0


def _stored_tries(airflow: Standalone, dag_id: str, count: int) -> list[dict[str, Any]] | None:
    try:
        tries = airflow.get("/pstt/api/kafka/metrics/runs", dag_id=dag_id, limit=10)
    except httpx.HTTPError:
        return None
    return sorted(tries, key=lambda t: t["try_number"]) if len(tries) >= count else None
