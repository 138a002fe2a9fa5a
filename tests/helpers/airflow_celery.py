"""
A deployment of ``scripts/airflow.sh up-cluster`` of a test's own: CeleryExecutor on a Redis of its own, a
PostgreSQL metadata database of its own, scheduler, DAG processor, API server, triggerer and two Celery workers as
separate processes, on ports and an Airflow home no developer's deployment uses. Started and stopped through the
script, as ``make up-cluster`` and ``make down`` do; the REST helpers are the standalone server's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from helpers import ROOT
from helpers.airflow_standalone import USERS, Standalone
from helpers.pstt_api_server import free_port

SCRIPT = ROOT / "scripts" / "airflow.sh"


class CeleryDeployment(Standalone):
    def __init__(self, home: Path, jobs: Path, queries: Path, env: dict[str, str] | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.home = home
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = home / "api-server.log"
        self.database = f"airflow_cluster_t{uuid.uuid4().hex[:8]}"
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps(USERS))
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PSTT_CLUSTER_HOME": str(home),
            "PSTT_CLUSTER_DB": self.database,
            "PSTT_CLUSTER_PORT": str(port),
            "PSTT_REDIS_PORT": str(free_port()),
            "PSTT_REDIS_DIR": str(home / "redis"),
            "PSTT_JOBS_DIR": str(jobs),
            "PSTT_QUERIES_DIR": str(queries),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__PSTT__MAINTENANCE_INTERVAL_S": "1",
            **(env or {}),
        }
        # The session's AIRFLOW_HOME (tests/conftest.py) is not this deployment's: the script sets its own.
        self.env.pop("AIRFLOW_HOME", None)
        self._process = None
        self._token: str | None = None

    def script(self, action: str) -> str:
        done = subprocess.run(
            [str(SCRIPT), action], env=self.env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"scripts/airflow.sh {action} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def start(self) -> None:
        """Starts what is not running (all of it the first time, a crashed worker after a test)."""
        self.script("up-cluster")

    def stop(self) -> None:
        """``make down``, then the test's own metadata database and its role."""
        self.script("down")
        subprocess.run(
            [
                "su",
                "postgres",
                "-c",
                f"dropdb --if-exists --force {self.database} && dropuser --if-exists {self.database}",
            ],
            check=True,
            capture_output=True,
        )

    def worker_pid(self, name: str) -> int:
        return int((self.home / "pids" / f"{name}.pid").read_text())

    def crash_worker(self, name: str) -> list[int]:
        """
        SIGKILL to the worker and every process under it, as a machine crash would: the task's supervisor and
        task process are its descendants (the task process in a process group of its own). Returns their pids.
        """
        tree = _descendants(self.worker_pid(name))
        for pid in tree:
            os.kill(pid, signal.SIGSTOP)  # frozen first, so none of them reacts to another's death
        for pid in tree:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in tree):
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of {name} survived SIGKILL: {tree}")
            time.sleep(0.2)
        return tree


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"
