"""
The /pstt API against a real Airflow API server, fed by two real DAG runs of the real operator: 25 rows
delivered to topic A, and 5 rows the broker refuses on topic B (larger than its max.message.bytes). Their
summaries wait in Airflow Variables until the server's background writer moves them into the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from helpers.airflow_home import metadata_engine
from helpers.kafka import consume_all, new_topic
from helpers.pstt_api_server import (
    DISPLAY_NAMES,
    FAILING_DAG,
    MAINTENANCE_INTERVAL_S,
    OK_DAG,
    UNWRITABLE_TOPIC_CONFIG,
    ApiServer,
    Delivered,
    deliver_two_runs,
    seed,
    summary_variables,
    wait_for_tries,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics import store
from pstt_provider.summary import DeliverySummary

READ_ENDPOINTS = [
    "/pstt/",
    "/pstt/static/chart.umd.min.js",
    "/pstt/api/kafka/health",
    "/pstt/api/kafka/metrics/summary?period=today",
    "/pstt/api/kafka/metrics/hourly?hours=24",
    "/pstt/api/kafka/metrics/topic/anything?limit=5",
    "/pstt/api/kafka/metrics/runs?limit=5",
    "/pstt/api/kafka/metrics/runs?limit=5&dag_id=pstt_metrics_ok",
    "/pstt/api/kafka/metrics/jobs",
    "/pstt/api/kafka/metrics/prometheus",
    "/pstt/api/health",
]
WRITE_ENDPOINTS = [
    ("/pstt/api/kafka/test", {"connection_id": "kafka_default"}),
    ("/pstt/api/kafka/send", {"connection_id": "kafka_default", "topic": "pstt-never", "value": "x"}),
    ("/pstt/api/kafka/metrics/cleanup?days=0", None),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, airflow_home: Callable[[Path], Path]) -> Path:
    return airflow_home(tmp_path_factory.mktemp("pstt-plugin-home"))


@pytest.fixture(scope="module")
def delivered(home, kafka_bootstrap: str) -> Delivered:
    topic_a = new_topic(kafka_bootstrap)
    topic_b = new_topic(kafka_bootstrap, config=UNWRITABLE_TOPIC_CONFIG)
    return deliver_two_runs(home, topic_a, topic_b)


@pytest.fixture(scope="module")
def server(home, delivered: Delivered) -> Iterator[ApiServer]:
    api = ApiServer(home)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def admin(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        yield client


def _expected(summaries: list[dict]) -> dict:
    sent = sum(summary["messages_sent"] for summary in summaries)
    failed = sum(summary["messages_failed"] for summary in summaries)
    latency = LatencyHistogram.merged(LatencyHistogram.from_dict(s["latency_histogram"]) for s in summaries)
    return {
        "total_messages": sent + failed,
        "messages_sent": sent,
        "messages_failed": failed,
        "total_bytes": sum(summary["bytes"] for summary in summaries),
        "avg_latency_ms": pytest.approx(latency.avg_ms, abs=0.001),
        "p99_latency_ms": pytest.approx(latency.quantile_ms(0.99), abs=0.001),
        "runs": len(summaries),
        "failed_runs": sum(1 for summary in summaries if summary["state"] == "failed"),
    }


def _subset(report: dict, expected: dict) -> dict:
    return {key: report[key] for key in expected}


def _assert_reports_match_the_runs(client: httpx.Client, delivered: Delivered) -> dict:
    ok, failing = delivered.summaries[OK_DAG], delivered.summaries[FAILING_DAG]
    assert (ok["messages_sent"], ok["messages_failed"], ok["bytes"] > 0) == (25, 0, True)
    assert (failing["messages_sent"], failing["messages_failed"], failing["bytes"]) == (0, 5, 0)

    summary = wait_for_tries(client, 2)
    assert summary["period"] == "24h"
    assert _subset(summary, _expected([ok, failing])) == _expected([ok, failing])
    assert summary["success_rate"] == pytest.approx(100 * 25 / 30, abs=0.001)
    assert summary["p99_latency_ms"] > 0

    hours = client.get("/pstt/api/kafka/metrics/hourly", params={"hours": 3}).json()
    assert len(hours) == 3
    assert sum(hour["messages_sent"] for hour in hours) == 25
    assert sum(hour["messages_failed"] for hour in hours) == 5
    assert sum(hour["total_bytes"] for hour in hours) == ok["bytes"]
    busiest = max(hours, key=lambda hour: hour["messages_sent"])
    assert busiest["p99_latency_ms"] == pytest.approx(_expected([ok])["p99_latency_ms"].expected, abs=0.001)

    topic_a = client.get(f"/pstt/api/kafka/metrics/topic/{delivered.topic_a}", params={"limit": 10}).json()
    assert _subset(topic_a, _expected([ok])) == _expected([ok])
    assert [run["state"] for run in topic_a["recent_runs"]] == ["success"]
    topic_b = client.get(f"/pstt/api/kafka/metrics/topic/{delivered.topic_b}", params={"limit": 10}).json()
    assert _subset(topic_b, _expected([failing])) == _expected([failing])
    assert topic_b["success_rate"] == 0.0
    assert "too large" in " ".join(topic_b["recent_runs"][0]["errors"])
    return summary


def test_summary_hourly_and_topic_report_the_real_runs_and_survive_a_restart(server, delivered, home):
    with server.client("admin") as client:
        before = _assert_reports_match_the_runs(client, delivered)
    # The writer moved the summaries out of their Variables (in the same commit as it stored them).
    assert summary_variables(home) == []

    server.restart()
    # Airflow clears a failed try's XComs when the task is retried: the stored run must not depend on them.
    from airflow.models.xcom import XComModel

    with metadata_engine(home).begin() as connection:
        connection.execute(delete(XComModel).where(XComModel.dag_id == FAILING_DAG))

    with server.client("admin") as client:
        after = _assert_reports_match_the_runs(client, delivered)
    assert {k: v for k, v in after.items() if k != "since"} == {k: v for k, v in before.items() if k != "since"}


def test_every_endpoint_refuses_requests_without_a_valid_token(server):
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for path in READ_ENDPOINTS[1:]:
            assert anonymous.get(path).status_code == 401, path
        for path, body in WRITE_ENDPOINTS:
            assert anonymous.post(path, json=body).status_code == 401, path
        assert anonymous.get("/pstt/openapi.json").status_code == 404  # no unauthenticated schema either
        page = anonymous.get("/pstt/", follow_redirects=False)
        assert page.status_code == 307
        assert "/auth/login" in page.headers["location"]
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": "Bearer forged"}) as forged:
        for path in READ_ENDPOINTS:
            assert forged.get(path).status_code in (401, 403), path


def test_a_viewer_reads_metrics_but_cannot_send_test_or_clean_up(server, delivered):
    with server.client("viewer") as viewer:
        for path in READ_ENDPOINTS:
            assert viewer.get(path).status_code == 200, path
        for path, body in WRITE_ENDPOINTS:
            assert viewer.post(path, json=body).status_code == 403, path
        assert viewer.get("/pstt/api/kafka/metrics/summary", params={"period": "24h"}).json()["runs"] == 2


def test_test_and_send_reach_only_configured_kafka_connections(admin, kafka_bootstrap):
    refused = [
        ({"bootstrap_servers": kafka_bootstrap}, 422),
        ({"connection_id": "kafka_default", "bootstrap_servers": "127.0.0.2:9092"}, 422),
        ({"connection_id": kafka_bootstrap}, 404),
        ({"connection_id": "pstt_metrics_sqlite"}, 422),
    ]
    for body, code in refused:
        assert admin.post("/pstt/api/kafka/test", json=body).status_code == code, body
        assert admin.post("/pstt/api/kafka/send", json={**body, "topic": "t", "value": 1}).status_code == code, body

    tested = admin.post("/pstt/api/kafka/test", json={"connection_id": "kafka_default"}).json()
    assert (tested["status"], tested["connected"], tested["brokers"]) == ("success", True, 1)

    topic = new_topic(kafka_bootstrap)
    sent = admin.post(
        "/pstt/api/kafka/send",
        json={"connection_id": "kafka_default", "topic": topic, "key": "k1", "value": {"test": "rotation"}},
    )
    assert sent.status_code == 200
    assert sent.json()["offset"] == 0
    [record] = consume_all(topic, expected=1)
    assert (record.key, record.value) == (b"k1", b'{"test": "rotation"}')


def test_recent_tries_name_their_jobs_and_filter_by_dag(admin, delivered):
    wait_for_tries(admin, 2)
    tries = admin.get("/pstt/api/kafka/metrics/runs", params={"limit": 10}).json()
    assert {item["dag_id"]: item["display_name"] for item in tries} == DISPLAY_NAMES  # from the DAGs in Airflow
    [failing] = admin.get("/pstt/api/kafka/metrics/runs", params={"dag_id": FAILING_DAG}).json()
    assert (failing["state"], failing["try_number"], failing["messages_failed"]) == ("failed", 1, 5)
    assert "too large" in failing["errors"][0]
    assert admin.get("/pstt/api/kafka/metrics/runs", params={"dag_id": "no_such_dag"}).json() == []
    jobs = admin.get("/pstt/api/kafka/metrics/jobs").json()
    assert jobs == sorted(
        ({"dag_id": dag_id, "display_name": name} for dag_id, name in DISPLAY_NAMES.items()),
        key=lambda job: job["display_name"].casefold(),
    )


def test_the_daily_health_check_names_the_failed_try(admin, delivered):
    wait_for_tries(admin, 2)
    report = admin.get("/pstt/api/health").json()
    levels = {check["name"]: check["level"] for check in report["checks"]}
    assert (report["status"], levels["success rate"], levels["failed runs"]) == ("critical", "critical", "warning")
    assert (report["metrics"]["runs"], report["metrics"]["failed_runs"]) == (2, 1)
    [failure] = report["failures"]
    assert failure["dag_id"] == FAILING_DAG
    assert failure["display_name"] == DISPLAY_NAMES[FAILING_DAG]
    assert failure["try_number"] == 1
    assert "too large" in failure["error"]
    assert failure["run_id"] == delivered.summaries[FAILING_DAG]["run_id"]


def test_health_reports_each_kafka_connection(admin):
    health = admin.get("/pstt/api/kafka/health").json()
    assert health["status"] == "healthy"
    assert health["connected"] is True
    default = next(item for item in health["connections"] if item["conn_id"] == "kafka_default")
    assert default["reachable"] is True
    assert default["latency_ms"] > 0
    assert default["error"] is None


def test_prometheus_exposes_counters_latency_histogram_and_connection_up(admin, delivered):
    text = admin.get("/pstt/api/kafka/metrics/prometheus").text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    a = (("dag_id", OK_DAG), ("topic", delivered.topic_a))
    b = (("dag_id", FAILING_DAG), ("topic", delivered.topic_b))
    assert samples[("pstt_kafka_messages_sent_total", a)] == 25
    assert samples[("pstt_kafka_messages_failed_total", b)] == 5
    assert samples[("pstt_kafka_bytes_total", a)] == delivered.summaries[OK_DAG]["bytes"]
    assert samples[("pstt_kafka_delivery_latency_seconds_count", (("topic", delivered.topic_a),))] == 25
    assert samples[("pstt_kafka_connection_up", (("conn_id", "kafka_default"),))] == 1


def test_cleanup_removes_only_runs_older_than_n_days_and_they_stay_gone(admin, home, delivered):
    wait_for_tries(admin, 2, period="30d")
    finished = store.utcnow() - timedelta(days=10)
    old = DeliverySummary(
        "old_dag", "old_run", "publish", -1, 1, "old-topic", "at_least_once", "success", finished, finished
    )
    with metadata_engine(home).begin() as connection:
        connection.execute(store.tries_table.insert().values(store.summary_row(old, store.utcnow())))

    assert admin.post("/pstt/api/kafka/metrics/cleanup", params={"days": 7}).json()["deleted_runs"] == 1
    assert admin.get("/pstt/api/kafka/metrics/summary", params={"period": "30d"}).json()["runs"] == 2

    assert admin.post("/pstt/api/kafka/metrics/cleanup", params={"days": 0}).json()["deleted_runs"] == 2
    # Cleaned tries must not come back: not from their summaries arriving again (a late Variable), nor as
    # unreported tries from Airflow's task_instance table, whatever the writer's next rounds find.
    seed(home, [DeliverySummary.from_dict(summary) for summary in delivered.summaries.values()], ingest=False)
    deadline = time.monotonic() + 30
    while summary_variables(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert summary_variables(home) == []
    time.sleep(3 * MAINTENANCE_INTERVAL_S)
    assert admin.get("/pstt/api/kafka/metrics/summary", params={"period": "30d"}).json()["runs"] == 0
    assert admin.get(f"/pstt/api/kafka/metrics/topic/{delivered.topic_a}").json()["recent_runs"] == []
