"""
``pstt health`` as cron runs it: a real process on a real Airflow home whose stored delivery tries are made
to cross each of the seed's thresholds, with the real local broker behind ``kafka_default``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.airflow_home import airflow_env, metadata_engine
from helpers.pstt_api_server import free_port, seed
from helpers.services import BOOTSTRAP
from helpers.summaries import tried

from pstt_provider.metrics import store
from pstt_provider.summary import DeliverySummary

PSTT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pstt")


@pytest.fixture
def home(airflow_home: Callable[[Path], Path], tmp_path: Path) -> Path:
    """A fresh copy of the migrated metadata DB for each test."""
    return airflow_home(tmp_path)


def store_try(
    home: Path,
    *,
    sent: int,
    failed: int,
    latency_ms: float,
    state: str = "success",
    age_h: float = 1,
    errors: tuple[str, ...] = (),
    display_name: str = "",
) -> DeliverySummary:
    """One stored try, as the API server's writer stores it."""
    finished = store.utcnow() - timedelta(hours=age_h)
    summary = replace(
        tried("health_dag", "health-topic", sent, failed, [latency_ms] * sent),
        run_id=f"run_{finished.isoformat()}",
        task_id="publish",
        state=state,
        started_at=finished - timedelta(seconds=5),
        finished_at=finished,
        bytes=sent * 100,
        errors=errors,
        display_name=display_name,
    )
    engine = metadata_engine(home)
    store.ensure_tables(engine)
    with engine.begin() as connection:
        connection.execute(store.tries_table.insert().values(store.summary_row(summary, store.utcnow())))
    return summary


def pstt_health(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PSTT, "health", *args], env={**airflow_env(home), **env}, capture_output=True, text=True, timeout=300
    )


def pstt_health_json(home: Path, **env: str) -> tuple[int, dict]:
    result = pstt_health(home, "--json", **env)
    return result.returncode, json.loads(result.stdout)


def levels(report: dict) -> dict[str, str]:
    return {check["name"]: check["level"] for check in report["checks"]}


def test_healthy_deliveries_exit_0(home, kafka_bootstrap):
    store_try(home, sent=990, failed=10, latency_ms=40)  # 99 % delivered, p99 40 ms
    store_try(home, sent=500, failed=0, latency_ms=900, state="failed", age_h=30)  # outside the 24 h window

    code, report = pstt_health_json(home)

    assert code == 0, report
    assert report["status"] == "ok"
    assert report["metrics"]["success_rate"] == 99.0
    assert (report["metrics"]["runs"], report["metrics"]["failed_runs"]) == (1, 0)
    assert report["metrics"]["try_success_rate"] == report["metrics"]["run_success_rate"] == 100.0
    assert report["failures"] == []
    assert levels(report)["kafka kafka_default"] == "ok"


def test_success_rate_under_98_percent_and_a_failed_run_exit_1(home, kafka_bootstrap):
    store_try(home, sent=970, failed=30, latency_ms=40, state="failed")  # 97 %

    code, report = pstt_health_json(home)

    assert code == 1, report
    assert levels(report) == {
        "kafka kafka_default": "ok",
        "success rate": "warning",
        "p99 latency": "ok",
        "failed runs": "warning",
        "metrics writer": "ok",
    }


def test_p99_latency_over_5_seconds_exits_2(home, kafka_bootstrap):
    store_try(home, sent=1000, failed=0, latency_ms=6000)

    code, report = pstt_health_json(home)

    assert code == 2, report
    assert levels(report)["p99 latency"] == "critical"
    assert levels(report)["success rate"] == "ok"


def test_success_rate_under_95_percent_exits_2_and_the_text_report_says_why(home, kafka_bootstrap):
    store_try(home, sent=90, failed=10, latency_ms=40)

    result = pstt_health(home)

    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == "pstt health: CRITICAL (last 24 h)"
    assert "[CRIT] success rate: 90.00 % (90 sent, 10 failed" in result.stdout


def test_a_job_that_fails_before_sending_anything_is_a_warning_naming_the_try(home, kafka_bootstrap):
    error = "TopicUnavailableError: topic 'pstt-traces' does not exist"
    failed = store_try(home, sent=0, failed=0, latency_ms=0, state="failed", errors=(error,), display_name="Tracce")
    store_try(home, sent=10, failed=0, latency_ms=20, age_h=2)

    code, report = pstt_health_json(home)

    assert code == 1, report
    assert levels(report)["success rate"] == "ok"
    assert levels(report)["failed runs"] == "warning"
    assert report["metrics"]["try_success_rate"] == report["metrics"]["run_success_rate"] == 50.0
    assert report["failures"] == [
        {
            "dag_id": "health_dag",
            "display_name": "Tracce",
            "run_id": failed.run_id,
            "task_id": "publish",
            "map_index": -1,
            "try_number": 1,
            "finished_at": failed.finished_at.isoformat(),
            "error": error,
        }
    ]
    text = pstt_health(home).stdout
    assert "[WARN] failed runs: 1 of 2 task tries failed (try success rate 50.00 %)" in text
    assert f"    Tracce (health_dag) run {failed.run_id} try 1 at " in text
    assert text.rstrip().endswith(error)


def test_an_unreachable_kafka_connection_exits_2_in_one_line_without_librdkafka_noise(home):
    dead = json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{free_port()}"}})
    store_try(home, sent=100, failed=0, latency_ms=40)

    result = pstt_health(home, AIRFLOW_CONN_KAFKA_DEAD=dead, AIRFLOW__PSTT__KAFKA_PROBE_TIMEOUT_S="2")

    assert result.returncode == 2, result.stdout
    [line] = [line for line in result.stdout.splitlines() if "kafka_dead" in line]
    assert line.startswith("  [CRIT] kafka kafka_dead: unreachable: no broker answered within 2 s: ")
    assert "Connection refused" in line
    assert "FAIL" not in result.stderr, result.stderr
    assert "%3|" not in result.stderr, result.stderr
    assert "rdkafka" not in result.stdout + result.stderr

    code, report = pstt_health_json(home, AIRFLOW_CONN_KAFKA_DEAD=dead, AIRFLOW__PSTT__KAFKA_PROBE_TIMEOUT_S="2")
    assert code == 2, report
    assert levels(report)["kafka kafka_dead"] == "critical"
    dead_health = next(c for c in report["connections"] if c["conn_id"] == "kafka_dead")
    assert dead_health["reachable"] is False
    assert "\n" not in dead_health["error"]


def test_pstt_kafka_connections_are_probed_like_kafka_ones(home, kafka_bootstrap):
    as_json = json.dumps({"conn_type": "pstt_kafka", "extra": {"bootstrap.servers": BOOTSTRAP}})
    as_uri = f"pstt-kafka://?bootstrap.servers={BOOTSTRAP.replace(':', '%3A')}"

    code, report = pstt_health_json(home, AIRFLOW_CONN_PSTT_OWN=as_json, AIRFLOW_CONN_PSTT_OWN_URI=as_uri)

    assert code == 0, report
    assert levels(report)["kafka pstt_own"] == levels(report)["kafka pstt_own_uri"] == "ok"
    assert {c["conn_id"]: c["brokers"] for c in report["connections"]} == {
        "kafka_default": 1,
        "pstt_own": 1,
        "pstt_own_uri": 1,
    }


def test_summaries_the_api_server_never_stored_are_a_warning_not_silently_missing(home, kafka_bootstrap):
    store_try(home, sent=10, failed=0, latency_ms=20)
    finished = store.utcnow() - timedelta(minutes=20)
    left = DeliverySummary(
        "health_dag", "run_late", "publish", -1, 1, "health-topic", "at_least_once", "failed", finished, finished
    )
    seed(home, [left], ingest=False)  # the task left its summary; no API server ran to store it

    code, report = pstt_health_json(home)

    assert code == 1, report
    writer = next(check for check in report["checks"] if check["name"] == "metrics writer")
    assert writer["level"] == "warning"
    # 20 min when written; 21 when the machine took over a minute to get here
    assert re.match(r"tries' summaries waiting in Airflow Variables: 1, the oldest for 2[01] min;", writer["message"])
    assert "is the Airflow API server running?" in writer["message"]
    assert report["metrics"]["runs"] == 1  # pstt health reads the store only: it never writes it


# ------------------------------------------------------------------------- no Airflow configuration


def files_under(path: Path) -> list[str]:
    return sorted(str(item.relative_to(path)) for item in path.rglob("*"))


def without_airflow(home_dir: Path, **env: str) -> dict[str, str]:
    """What a new user's shell has: no AIRFLOW_* variable at all, and a HOME of its own."""
    import os

    return {
        **{name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "_AIRFLOW"))},
        "HOME": str(home_dir),
        **env,
    }


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_without_airflow_configuration_one_line_says_what_to_set_exit_2_and_nothing_is_created(tmp_path, as_json):
    user_home = tmp_path / "user"
    user_home.mkdir()

    result = subprocess.run(
        [PSTT, "health", *(["--json"] if as_json else [])],
        env=without_airflow(user_home),
        cwd=user_home,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    output = result.stdout if as_json else result.stderr
    assert (result.stderr if as_json else result.stdout) == ""
    [line] = output.splitlines()
    if as_json:
        report = json.loads(line)
        assert report["status"] == "critical"
        assert report["checks"][0]["level"] == "critical"
        line = report["error"]
    else:
        assert line.startswith("pstt health: no Airflow metadata database at ")
    assert str(user_home / "airflow" / "airflow.db") in line
    assert "AIRFLOW_HOME is not set" in line
    assert "set AIRFLOW_HOME" in line
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in line
    assert "Traceback" not in result.stdout + result.stderr
    assert files_under(user_home) == []


def test_an_airflow_home_without_a_database_or_with_an_empty_one_is_named_and_left_alone(tmp_path):
    user_home, airflow_home = tmp_path / "user", tmp_path / "airflow-here"
    user_home.mkdir()
    airflow_home.mkdir()

    missing = subprocess.run(
        [PSTT, "health"],
        env=without_airflow(user_home, AIRFLOW_HOME=str(airflow_home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        f"pstt health: no Airflow metadata database at {airflow_home / 'airflow.db'} "
        f"(AIRFLOW_HOME={airflow_home}, without airflow.cfg): set AIRFLOW_HOME to the Airflow home whose "
        "airflow.cfg names the metadata database, or AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to the database's URL"
    ]
    assert files_under(airflow_home) == []
    assert files_under(user_home) == []

    (airflow_home / "airflow.db").touch()  # e.g. made by a tool that crashed: not an Airflow DB
    empty = subprocess.run(
        [PSTT, "health"],
        env=without_airflow(user_home, AIRFLOW_HOME=str(airflow_home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert empty.returncode == 2
    [line] = empty.stderr.splitlines()
    assert "is not an initialised Airflow metadata database" in line
    assert "airflow db migrate" in line
    assert files_under(airflow_home) == ["airflow.db"]
    assert (airflow_home / "airflow.db").stat().st_size == 0


def test_the_database_named_by_airflow_cfg_is_the_one_read(home, tmp_path, kafka_bootstrap):
    """AIRFLOW_HOME alone, as the `airflow` command finds it: airflow.cfg names the DB, no DB variable set."""
    store_try(home, sent=5, failed=0, latency_ms=10)
    config_home = tmp_path / "config-only"
    config_home.mkdir()
    (config_home / "airflow.cfg").write_text(
        f"[core]\nload_examples = False\n\n[database]\nsql_alchemy_conn = sqlite:///{home}/airflow.db\n"
    )
    env = without_airflow(tmp_path, AIRFLOW_HOME=str(config_home))
    env["AIRFLOW_CONN_KAFKA_DEFAULT"] = json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": BOOTSTRAP}})

    result = subprocess.run([PSTT, "health", "--json"], env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["messages_sent"] == 5


def test_an_unreachable_server_database_is_one_line_exit_2(tmp_path):
    user_home = tmp_path / "user"
    user_home.mkdir()
    url = f"postgresql+psycopg2://airflow:secret-pw@127.0.0.1:{free_port()}/airflow"

    result = subprocess.run(
        [PSTT, "health"],
        env=without_airflow(user_home, AIRFLOW_HOME=str(tmp_path / "af"), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    problem = [line for line in result.stderr.splitlines() if line.startswith("pstt health: ")]
    assert len(problem) == 1, result.stderr
    assert "cannot reach the Airflow metadata database" in problem[0], result.stderr
    assert "secret-pw" not in result.stderr
    assert "Traceback" not in result.stderr
