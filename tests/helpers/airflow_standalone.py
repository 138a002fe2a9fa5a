"""
A real ``airflow standalone`` (scheduler, DAG processor, triggerer, API server; LocalExecutor on SQLite) on
an Airflow home of its own, serving the repo's DAG files over a jobs folder the test writes: what an
operations team runs on day one, with no ``dag.test()`` shortcut. Tries run in real task processes that
talk to the API server, so XCom clearing, retries and the metrics writer behave as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from helpers import ROOT
from helpers.processes import stop_group

USERS = {"admin": "admin-pw"}
START_TIMEOUT_S = 240


class Standalone:
    def __init__(self, home: Path, jobs: Path, queries: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = home / "standalone.log"
        dags = home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for name in ("pstt_jobs.py", "pstt_jobs_validation.py"):
            shutil.copy(ROOT / "dags" / name, dags / name)
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps(USERS))
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "pstt-standalone-test-secret",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__PSTT__MAINTENANCE_INTERVAL_S": "1",
            "PSTT_JOBS_DIR": str(jobs),
            "PSTT_QUERIES_DIR": str(queries),
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.home,
            )
        self.wait(lambda: self._answers(), START_TIMEOUT_S, "the API server to answer")

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {self._process.returncode}: see {self.log_path}")
        try:
            return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            stop_group(self._process)
            self._process = None

    def token(self) -> str:
        if self._token is None:
            response = httpx.post(
                f"{self.url}/auth/token", json={"username": "admin", "password": USERS["admin"]}, timeout=30
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )
        response.raise_for_status()
        return response.json()

    def wait(self, condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """Poll ``condition`` every second until it returns something truthy; fail naming ``what``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"waited {timeout_s:.0f} s for {what}; see {self.log_path}")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        try:
            return self.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="-run_after")["dag_runs"]
        except httpx.HTTPStatusError:
            return []

    def finished_run(self, dag_id: str, timeout_s: float = 240) -> dict[str, Any]:
        """The first DAG run of ``dag_id`` that ends, as the API reports it."""

        def finished() -> dict[str, Any] | None:
            return next((run for run in self.dag_runs(dag_id) if run["state"] in ("success", "failed")), None)

        return self.wait(finished, timeout_s, f"a finished run of {dag_id}")

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try Airflow keeps of one task instance (current and history), oldest first."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return sorted(self.get(path)["task_instances"], key=lambda ti: ti["try_number"])

    def task_log(self, dag_id: str, run_id: str, task_id: str = "export_to_kafka") -> str:
        """The last try's log as the UI shows it, for a failed assertion to say why the task failed."""
        tries = self.tries(dag_id, run_id, task_id)
        if not tries:
            return f"{task_id} of {run_id} has no try"
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{tries[-1]['try_number']}"
        try:
            content = self.get(path, full_content="true").get("content", [])
        except httpx.HTTPError as err:
            return f"no log for {task_id} of {run_id}: {err}"
        return "\n".join(map(_log_line, content[-40:]))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command (``pstt ...``, ``airflow ...``) run against this Airflow's configuration."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, check=False, cwd=self.home)

    def dag_exists(self, dag_id: str) -> bool:
        try:
            self.get(f"/api/v2/dags/{dag_id}")
        except httpx.HTTPStatusError:
            return False
        return True

    def trigger(self, dag_id: str) -> str:
        """A manual run of ``dag_id`` now; returns its run_id."""
        response = httpx.post(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def task_state(self, dag_id: str, run_id: str, task_id: str = "export_to_kafka") -> str | None:
        try:
            return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]
        except httpx.HTTPStatusError:
            return None

    def serialized_timezone(self, dag_id: str) -> str:
        """
        The time zone of the DAG as the scheduler has it (the serialized DAG). The UI's DAG details cannot
        show it: Airflow 3.3's ``DagModel.timezone`` is always ``[core] default_timezone``.
        """
        probe = (
            "import sys; from airflow.models.serialized_dag import SerializedDagModel; "
            "print(SerializedDagModel.get_dag(sys.argv[1]).timezone)"
        )
        result = self.cli(sys.executable, "-c", probe, dag_id)
        return result.stdout.strip().splitlines()[-1]


def _log_line(item: Any) -> str:
    """One structured log record as a line: its event, and the exception it carries (type and message)."""
    if not isinstance(item, dict):
        return str(item)
    errors = [f"{error.get('exc_type')}: {error.get('exc_value')}" for error in item.get("error_detail") or []]
    return " ".join([str(item.get("event", "")), *errors])
