"""
A real ``airflow api-server`` for the plugin and dashboard tests: this test session's AIRFLOW_HOME and
SQLite DB, a free 127.0.0.1 port, SimpleAuthManager users admin (Admin) and viewer (Viewer) with known
passwords. It can be restarted to prove the metrics survive.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

USERS = {"admin": "admin-pw", "viewer": "viewer-pw"}
JWT_SECRET = "pstt-test-jwt-secret-not-for-production"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            **os.environ,
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
