"""
The daily check over HTTP (``GET /pstt/api/health``) against a real API server, beside ``pstt health --json``
on the same Airflow home, and a job whose first try failed and whose retry succeeded, seeded as a real
operator leaves its tries: DeliverySummary JSON in ``pstt_try_`` Variables, moved into the store by
``store.ingest`` (the writer).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from helpers.airflow_home import airflow_env
from helpers.pstt_api_server import ApiServer, seed, stored_tries, summary_variables, wait_for_tries
from prometheus_client.parser import text_string_to_metric_families

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics import store
from pstt_provider.summary import DeliverySummary

PSTT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pstt")
DAG_ID, RUN_ID, NAME = "pstt_tracce_giornaliere", "scheduled__2026-01-20T01:00:00+00:00", "Tracce giornaliere"
FIRST_ERROR = "DeliveryError: 3 of 200 message(s) were not acknowledged: Broker: Not enough in-sync replicas"


def attempt(try_number: int, *, ok: bool, finished_ago: timedelta) -> DeliverySummary:
    finished = store.utcnow() - finished_ago
    latency = LatencyHistogram()
    for ms in (12.0, 15.0, 40.0):
        latency.record(ms)
    return DeliverySummary(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        task_id="export_to_kafka",
        map_index=-1,
        try_number=try_number,
        topic="pstt-traces",
        delivery="exactly_once",
        state="success" if ok else "failed",
        started_at=finished - timedelta(seconds=20),
        finished_at=finished,
        rows=200,
        messages_sent=200 if ok else 0,
        messages_failed=0 if ok else 3,
        messages_dead_lettered=0 if ok else 2,
        messages_aborted=0 if ok else 195,  # acknowledged inside the try's aborted transaction
        bytes=20_000 if ok else 0,
        latency=latency,
        errors=() if ok else (FIRST_ERROR,),
        display_name=NAME,
        parameters={"DATA": "2026-01-19"},
    )


FIRST, RETRY = (
    attempt(1, ok=False, finished_ago=timedelta(minutes=40)),
    attempt(2, ok=True, finished_ago=timedelta(minutes=30)),
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, airflow_home: Callable[[Path], Path]) -> Path:
    path = airflow_home(tmp_path_factory.mktemp("pstt-health-api-home"))
    seed(path, [FIRST, RETRY])  # Variables, then store.ingest, as the API server's writer does
    return path


@pytest.fixture(scope="module")
def server(home: Path, kafka_bootstrap: str) -> Iterator[ApiServer]:
    api = ApiServer(home)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def admin(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        yield client


def pstt_health_json(home: Path) -> tuple[int, dict]:
    result = subprocess.run(
        [PSTT, "health", "--json"], env=airflow_env(home), capture_output=True, text=True, timeout=300
    )
    return result.returncode, json.loads(result.stdout)


def test_the_writer_stored_both_tries_of_the_run_and_removed_their_variables(home):
    tries = stored_tries(home, dag_id=DAG_ID)
    assert [(item.try_number, item.state) for item in tries] == [(2, "success"), (1, "failed")]
    assert [item.display_name for item in tries] == [NAME, NAME]
    assert tries[1].errors == (FIRST_ERROR,)
    assert tries[1].reported
    assert (tries[1].messages_dead_lettered, tries[1].messages_aborted) == (2, 195)
    assert summary_variables(home) == []


def test_a_retried_job_is_two_tries_one_failed_in_the_dashboard_api(admin):
    summary = wait_for_tries(admin, 2)
    assert (summary["runs"], summary["failed_runs"], summary["try_success_rate"]) == (2, 1, 50.0)
    assert (summary["job_runs"], summary["failed_job_runs"], summary["run_success_rate"]) == (1, 0, 100.0)

    tries = admin.get("/pstt/api/kafka/metrics/runs", params={"dag_id": DAG_ID, "limit": 10}).json()
    assert [(item["try_number"], item["state"], item["display_name"]) for item in tries] == [
        (2, "success", NAME),
        (1, "failed", NAME),
    ]
    assert tries[1]["errors"] == [FIRST_ERROR]
    assert tries[1]["run_id"] == RUN_ID
    assert admin.get("/pstt/api/kafka/metrics/jobs").json() == [{"dag_id": DAG_ID, "display_name": NAME}]


def test_dead_lettered_and_aborted_counts_appear_in_the_api(admin):
    summary = wait_for_tries(admin, 2)
    assert (summary["messages_dead_lettered"], summary["messages_aborted"], summary["messages_skipped"]) == (2, 195, 0)
    assert (summary["messages_sent"], summary["messages_failed"]) == (200, 3)
    [first] = [item for item in admin.get("/pstt/api/kafka/metrics/runs").json() if item["try_number"] == 1]
    assert (first["messages_dead_lettered"], first["messages_aborted"]) == (2, 195)
    topic = admin.get("/pstt/api/kafka/metrics/topic/pstt-traces").json()
    assert (topic["messages_dead_lettered"], topic["messages_aborted"]) == (2, 195)
    hours = admin.get("/pstt/api/kafka/metrics/hourly", params={"hours": 2}).json()
    assert sum(hour["messages_dead_lettered"] for hour in hours) == 2
    assert sum(hour["messages_aborted"] for hour in hours) == 195

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(admin.get("/pstt/api/kafka/metrics/prometheus").text)
        for sample in family.samples
    }
    labels = (("dag_id", DAG_ID), ("topic", "pstt-traces"))
    assert samples[("pstt_kafka_messages_dead_lettered_total", labels)] == 2
    assert samples[("pstt_kafka_messages_aborted_total", labels)] == 195


def test_pstt_health_json_names_the_failed_try_and_counts_two_tries(home, kafka_bootstrap):
    code, report = pstt_health_json(home)

    assert code == 1, report  # every message of the run delivered in the end, but a try failed: a warning
    assert (report["metrics"]["runs"], report["metrics"]["failed_runs"]) == (2, 1)
    assert (report["metrics"]["try_success_rate"], report["metrics"]["run_success_rate"]) == (50.0, 100.0)
    assert {check["name"]: check["level"] for check in report["checks"]} == {
        "kafka kafka_default": "ok",
        "success rate": "ok",  # 200 of 203 messages
        "p99 latency": "ok",
        "failed runs": "warning",
        "metrics writer": "ok",
    }
    assert report["failures"] == [
        {
            "dag_id": DAG_ID,
            "display_name": NAME,
            "run_id": RUN_ID,
            "task_id": "export_to_kafka",
            "map_index": -1,
            "try_number": 1,
            "finished_at": FIRST.finished_at.isoformat(),
            "error": FIRST_ERROR,
        }
    ]


def test_get_health_is_the_report_of_pstt_health_json_and_needs_a_token(server, admin, home):
    wait_for_tries(admin, 2)
    code, cli = pstt_health_json(home)
    response = admin.get("/pstt/api/health")

    assert response.status_code == 200
    api = response.json()
    assert (api["status"], api["checks"]) == (cli["status"], cli["checks"])
    assert (api["metrics"], api["failures"], api["window_hours"]) == (cli["metrics"], cli["failures"], 24)
    assert code == 1
    assert api["status"] == "warning"
    assert [c["conn_id"] for c in api["connections"]] == [c["conn_id"] for c in cli["connections"]]

    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/pstt/api/health").status_code == 401
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": "Bearer forged"}) as forged:
        assert forged.get("/pstt/api/health").status_code in (401, 403)  # as Airflow answers a bad token
    with server.client("viewer") as viewer:
        assert viewer.get("/pstt/api/health").json()["status"] == "warning"
    # The seed's endpoint stays as it was.
    assert admin.get("/pstt/api/kafka/health").json()["status"] == "healthy"
