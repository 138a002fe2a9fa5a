"""
A real ``airflow api-server`` for the plugin and dashboard tests, on an Airflow home of its own (so other
tests' runs never mix into the totals): migrated SQLite DB, a free 127.0.0.1 port, SimpleAuthManager
users admin (Admin) and viewer (Viewer) with known passwords, and the metrics writer (the server's background
task) every second. It can be restarted to prove the metrics survive. Real DAG runs for it are made with
``dag.test()`` in a child process on the same home (``python -m helpers.pstt_api_server run-dags HOME DAG_ID...``).

Tries' summaries reach the store as a real operator leaves them: Airflow Variables ``pstt_try_<digest>``
holding DeliverySummary JSON, which the writer moves into ``pstt_delivery_tries``. Variables are written in a
child process on the home (``seed``), as the home's Fernet key encrypts them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpers import child_env
from helpers.airflow_home import airflow_env, metadata_engine
from helpers.processes import stop_group
from pstt_provider.summary import VARIABLE_PREFIX, DeliverySummary

USERS = {"admin": "admin-pw", "viewer": "viewer-pw"}
JWT_SECRET = "pstt-test-jwt-secret-not-for-production"
MAINTENANCE_INTERVAL_S = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_dags(home: Path, *dag_ids: str) -> dict[str, str]:
    """Run DAGs of ``home/dags`` once each with dag.test() in a child process; returns their final states."""
    result = subprocess.run(
        [sys.executable, "-m", __name__, "run-dags", str(home), *dag_ids],
        env=child_env(airflow_env(home)),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"run-dags failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _run_dags_here(home: Path, dag_ids: list[str]) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(str(home / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    sync_bag_to_db(bag, "dags-folder", None)
    states = {dag_id: str(bag.get_dag(dag_id).test().state) for dag_id in dag_ids}
    print(json.dumps(states))


class ApiServer:
    def __init__(self, home: Path, **extra_env: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / f"api-server-{self.port}.log"
        self._process: subprocess.Popen | None = None
        passwords = home / "pstt_test_passwords.json"
        passwords.write_text(json.dumps(USERS))
        self.env = {
            **airflow_env(home),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__PSTT__MAINTENANCE_INTERVAL_S": str(MAINTENANCE_INTERVAL_S),
            **extra_env,
        }

    def start(self) -> None:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.port), "-w", "1"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"api-server exited with {self._process.returncode}: see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"api-server did not answer within 180 s: see {self.log_path}")

    def stop(self) -> None:
        if self._process is not None:
            stop_group(self._process)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def token(self, user: str) -> str:
        response = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": USERS[user]}, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


SOURCE_CONN_ID = "pstt_metrics_sqlite"
OK_DAG, FAILING_DAG = "pstt_metrics_ok", "pstt_metrics_unacknowledged"
DISPLAY_NAMES = {OK_DAG: "Metrics: all delivered", FAILING_DAG: "Metrics: refused by the broker"}
# Topic B takes at most 2000-byte batches, while its producer is told it may send 1 MB messages: the
# broker refuses every 8 KiB row (the operator would otherwise fit its limits to the topic and fail early).
UNWRITABLE_TOPIC_CONFIG = {"max.message.bytes": "2000"}
ROWS_SQL = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {n}) "
DAGS = """\"\"\"Two pstt delivery DAGs (airflow dag) for the metrics plugin tests.\"\"\"
from airflow.sdk import DAG

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

with DAG("{ok_dag}", schedule=None, dag_display_name="{ok_name}"):
    SqlToKafkaOperator(
        task_id="publish", conn_id="{conn}", topic="{topic_a}", message_key_field="ID",
        sql="{rows_a}SELECT n AS ID, 'row ' || n AS TEXT FROM c",
    )
with DAG("{failing_dag}", schedule=None, dag_display_name="{failing_name}"):
    SqlToKafkaOperator(
        task_id="publish", conn_id="{conn}", topic="{topic_b}", message_key_field="ID",
        sql="{rows_b}SELECT n AS ID, hex(randomblob(4000)) AS PAYLOAD FROM c",
        producer_config={{"message.max.bytes": 1000000}},
    )
"""


@dataclass(frozen=True)
class Delivered:
    """What the two real runs did: topic A all delivered, topic B all refused (message too large)."""

    topic_a: str
    topic_b: str
    summaries: dict[str, dict[str, Any]]  # dag_id -> the try's DeliverySummary.to_dict(), as the operator left it


def deliver_two_runs(home: Path, topic_a: str, topic_b: str, rows_a: int = 25, rows_b: int = 5) -> Delivered:
    """
    One successful run to ``topic_a`` and one run whose every message the broker refuses (``topic_b`` made
    with UNWRITABLE_TOPIC_CONFIG), both real DAG runs through the real operator.
    """
    os.environ[f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "sqlite", "host": str(home / "source.db")}
    )
    (home / "dags" / "pstt_metrics_dags.py").write_text(
        DAGS.format(
            ok_dag=OK_DAG,
            failing_dag=FAILING_DAG,
            ok_name=DISPLAY_NAMES[OK_DAG],
            failing_name=DISPLAY_NAMES[FAILING_DAG],
            conn=SOURCE_CONN_ID,
            topic_a=topic_a,
            topic_b=topic_b,
            rows_a=ROWS_SQL.format(n=rows_a),
            rows_b=ROWS_SQL.format(n=rows_b),
        )
    )
    states = run_dags(home, OK_DAG, FAILING_DAG)
    assert states == {OK_DAG: "success", FAILING_DAG: "failed"}, states
    summaries = left_summaries(home)
    assert set(summaries) == {OK_DAG, FAILING_DAG}, summaries
    return Delivered(topic_a, topic_b, summaries)


def _child(home: Path, command: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", __name__, command, str(home)],
        env=child_env(airflow_env(home)),
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def left_summaries(home: Path) -> dict[str, dict[str, Any]]:
    """
    dag_id -> the summary its try left in a ``pstt_try_`` Variable (not yet moved into the store).
    """
    return json.loads(_child(home, "left-summaries"))


def seed(home: Path, summaries: list[DeliverySummary], *, ingest: bool = True) -> None:
    """Leave the summaries in Variables as the operator does, then (``ingest``) run the writer's store.ingest."""
    payload = json.dumps({"ingest": ingest, "summaries": [summary.to_dict() for summary in summaries]})
    _child(home, "seed", payload)


def summary_variables(home: Path) -> list[str]:
    """Keys of the summaries still waiting in Variables."""
    with metadata_engine(home).connect() as connection:
        return list(
            connection.execute(
                text("SELECT key FROM variable WHERE key LIKE :prefix"), {"prefix": f"{VARIABLE_PREFIX}%"}
            )
            .scalars()
            .all()
        )


def stored_tries(home: Path, **filters: Any) -> list[DeliverySummary]:
    """What the store holds (read as the API reads it)."""
    from pstt_provider.metrics import store

    with Session(metadata_engine(home)) as session:
        return store.tries(session, **filters)


def wait_for_tries(client: httpx.Client, count: int, period: str = "24h", timeout_s: float = 60) -> dict[str, Any]:
    """The summary once the server's background writer has stored ``count`` tries of the period."""
    deadline = time.monotonic() + timeout_s
    while True:
        summary = client.get("/pstt/api/kafka/metrics/summary", params={"period": period}).json()
        if summary["runs"] == count or time.monotonic() > deadline:
            return summary
        time.sleep(0.5)


def _left_summaries_here() -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        waiting = {variable.key: variable.val for variable in session.scalars(select(Variable))}
    left = [
        DeliverySummary.from_dict(json.loads(val)) for key, val in waiting.items() if key.startswith(VARIABLE_PREFIX)
    ]
    print(json.dumps({summary.dag_id: summary.to_dict() for summary in left}))


def _seed_here(payload: dict[str, Any]) -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from pstt_provider.metrics import store

    for value in payload["summaries"]:
        summary = DeliverySummary.from_dict(value)
        Variable.set(summary.variable_key, summary.to_json())
    if payload["ingest"]:
        with create_session() as session:
            store.ingest(session)


if __name__ == "__main__":
    if sys.argv[1] == "run-dags":
        _run_dags_here(Path(sys.argv[2]), sys.argv[3:])
    elif sys.argv[1] == "left-summaries":
        _left_summaries_here()
    elif sys.argv[1] == "seed":
        _seed_here(json.load(sys.stdin))
