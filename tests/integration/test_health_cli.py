"""
``pstt health`` as cron runs it: a real process on a real Airflow home whose stored delivery runs are made
to cross each of the seed's thresholds, with the real local broker behind ``kafka_default``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from pstt_api_server import airflow_env, free_port, metadata_engine, migrate

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics import store

PSTT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pstt")


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pstt-health-template")
    migrate(home)
    return home


@pytest.fixture
def home(migrated_home: Path, tmp_path: Path) -> Path:
    """A fresh copy of the migrated metadata DB for each test."""
    (tmp_path / "dags").mkdir()
    shutil.copy(migrated_home / "airflow.db", tmp_path / "airflow.db")
    return tmp_path


def store_run(home: Path, *, sent: int, failed: int, latency_ms: float, state: str = "success", age_h: float = 1):
    histogram = LatencyHistogram()
    for _ in range(sent):
        histogram.record(latency_ms)
    finished = store.utcnow() - timedelta(hours=age_h)
    row = store.summary_row(
        {"dag_id": "health_dag", "run_id": f"run_{finished.isoformat()}", "task_id": "publish", "map_index": -1},
        {
            "topic": "health-topic",
            "rows": sent + failed,
            "messages_sent": sent,
            "messages_failed": failed,
            "bytes": sent * 100,
            "state": state,
            "finished_at": finished.isoformat(),
            "latency_histogram": histogram.to_dict(),
        },
        store.utcnow(),
    )
    engine = metadata_engine(home)
    store.ensure_tables(engine)
    with engine.begin() as connection:
        connection.execute(store.runs_table.insert().values(row))


def pstt_health(home: Path, **env: str) -> tuple[int, dict]:
    result = subprocess.run(
        [PSTT, "health", "--json"], env={**airflow_env(home), **env}, capture_output=True, text=True, timeout=300
    )
    return result.returncode, json.loads(result.stdout)


def levels(report: dict) -> dict[str, str]:
    return {check["name"]: check["level"] for check in report["checks"]}


def test_healthy_deliveries_exit_0(home, kafka_bootstrap):
    store_run(home, sent=990, failed=10, latency_ms=40)  # 99 % delivered, p99 40 ms
    store_run(home, sent=500, failed=0, latency_ms=900, state="failed", age_h=30)  # outside the 24 h window

    code, report = pstt_health(home)

    assert code == 0, report
    assert report["status"] == "ok"
    assert report["metrics"]["success_rate"] == 99.0
    assert levels(report)["kafka kafka_default"] == "ok"


def test_success_rate_under_98_percent_and_a_failed_run_exit_1(home, kafka_bootstrap):
    store_run(home, sent=970, failed=30, latency_ms=40, state="failed")  # 97 %

    code, report = pstt_health(home)

    assert code == 1, report
    assert levels(report) == {
        "kafka kafka_default": "ok",
        "success rate": "warning",
        "p99 latency": "ok",
        "failed runs": "warning",
    }


def test_p99_latency_over_5_seconds_exits_2(home, kafka_bootstrap):
    store_run(home, sent=1000, failed=0, latency_ms=6000)

    code, report = pstt_health(home)

    assert code == 2, report
    assert levels(report)["p99 latency"] == "critical"
    assert levels(report)["success rate"] == "ok"


def test_success_rate_under_95_percent_exits_2_and_the_text_report_says_why(home, kafka_bootstrap):
    store_run(home, sent=90, failed=10, latency_ms=40)

    result = subprocess.run([PSTT, "health"], env=airflow_env(home), capture_output=True, text=True, timeout=300)

    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == "pstt health: CRITICAL (last 24 h)"
    assert "[CRIT] success rate: 90.00 % (90 sent, 10 failed" in result.stdout


def test_an_unreachable_kafka_connection_exits_2(home):
    dead = json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{free_port()}"}})
    store_run(home, sent=100, failed=0, latency_ms=40)

    code, report = pstt_health(home, AIRFLOW_CONN_KAFKA_DEAD=dead, AIRFLOW__PSTT__KAFKA_PROBE_TIMEOUT_S="2")

    assert code == 2, report
    assert levels(report)["kafka kafka_dead"] == "critical"
    assert next(c for c in report["connections"] if c["conn_id"] == "kafka_dead")["reachable"] is False
