"""
A real ``airflow api-server`` for the plugin and dashboard tests, on an Airflow home of its own (so other
tests' runs never mix into the totals): migrated SQLite DB, a free 127.0.0.1 port, SimpleAuthManager
users admin (Admin) and viewer (Viewer) with known passwords. It can be restarted to prove the metrics
survive. Real DAG runs for it are made with ``dag.test()`` in a child process on the same home
(``python pstt_api_server.py run-dags HOME DAG_ID...``).
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
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

USERS = {"admin": "admin-pw", "viewer": "viewer-pw"}
JWT_SECRET = "pstt-test-jwt-secret-not-for-production"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(home: Path) -> dict[str, str]:
    """This process's environment pointed at another Airflow home and its SQLite DB."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def migrate(home: Path) -> None:
    (home / "dags").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=airflow_env(home)
    )


def run_dags(home: Path, *dag_ids: str) -> dict[str, str]:
    """Run DAGs of ``home/dags`` once each with dag.test() in a child process; returns their final states."""
    result = subprocess.run(
        [sys.executable, __file__, "run-dags", str(home), *dag_ids],
        env=airflow_env(home),
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
    def __init__(self, home: Path) -> None:
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
        if self._process is None:
            return
        os.killpg(self._process.pid, 15)
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, 9)
            self._process.wait(timeout=30)
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
# Topic B takes at most 2000-byte batches, while its producer is told it may send 1 MB messages: the
# broker refuses every 8 KiB row (the operator would otherwise fit its limits to the topic and fail early).
UNWRITABLE_TOPIC_CONFIG = {"max.message.bytes": "2000"}
ROWS_SQL = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {n}) "
DAGS = """\"\"\"Two pstt delivery DAGs (airflow dag) for the metrics plugin tests.\"\"\"
from airflow.sdk import DAG

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

with DAG("{ok_dag}", schedule=None):
    SqlToKafkaOperator(
        task_id="publish", conn_id="{conn}", topic="{topic_a}", message_key_field="ID",
        sql="{rows_a}SELECT n AS ID, 'row ' || n AS TEXT FROM c",
    )
with DAG("{failing_dag}", schedule=None):
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
    summaries: dict[str, dict[str, Any]]  # dag_id -> the operator's own pstt_delivery XCom


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
            conn=SOURCE_CONN_ID,
            topic_a=topic_a,
            topic_b=topic_b,
            rows_a=ROWS_SQL.format(n=rows_a),
            rows_b=ROWS_SQL.format(n=rows_b),
        )
    )
    states = run_dags(home, OK_DAG, FAILING_DAG)
    assert states == {OK_DAG: "success", FAILING_DAG: "failed"}, states
    return Delivered(topic_a, topic_b, xcom_summaries(home))


def metadata_engine(home: Path) -> Engine:
    return create_engine(f"sqlite:///{home}/airflow.db")


def xcom_summaries(home: Path) -> dict[str, dict[str, Any]]:
    from airflow.models.xcom import XComModel

    with metadata_engine(home).connect() as connection:
        rows = connection.execute(
            select(XComModel.dag_id, XComModel.value).where(XComModel.key == "pstt_delivery")
        ).all()
    return {dag_id: value if isinstance(value, dict) else json.loads(value) for dag_id, value in rows}


if __name__ == "__main__" and sys.argv[1] == "run-dags":
    _run_dags_here(Path(sys.argv[2]), sys.argv[3:])
