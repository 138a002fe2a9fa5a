"""
A DAG built from a spec, run with ``dag.test()``: rows from a real SQLite database land in the real
broker, and a failing run sends exactly one e-mail to a real local SMTP server (aiosmtpd).
"""

from __future__ import annotations

import email
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pendulum
import pytest
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = pendulum.datetime(2026, 1, 20, 2, 0, tz="UTC")
QUERY = """\
define DATA='2026-01-01'  --Obbligatorio: Giorno delle tracce
SELECT BARCODE, TRKDATE, STATUS FROM TRACES WHERE TRKDATE = '&DATA' ORDER BY BARCODE;
"""


class Inbox:
    """Collects every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    extra = {"disable_tls": True, "disable_ssl": True, "from_email": "pstt@localhost", "retry_limit": 0}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}),
    )
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def job_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A jobs and a queries folder for this test, a SQLite source with 3 traces of 2026-01-19, and its connection."""
    database = tmp_path / "source.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE TRACES (BARCODE TEXT, TRKDATE TEXT, STATUS TEXT)")
        rows = [("RR1", "2026-01-19", "OK"), ("RR2", "2026-01-19", "OK"), ("RR3", "2026-01-19", "KO")]
        db.executemany("INSERT INTO TRACES VALUES (?, ?, ?)", [*rows, ("RR9", "2026-01-20", "OK")])
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "E2E-001--Traces.sql").write_text(QUERY)
    (tmp_path / "jobs").mkdir()
    monkeypatch.setenv("PSTT_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("PSTT_QUERIES_DIR", str(tmp_path / "queries"))
    monkeypatch.setenv("AIRFLOW_CONN_PSTT_E2E_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    return tmp_path / "jobs"


def write_spec(jobs: Path, name: str, topic: str, **changes: Any) -> str:
    spec = {
        "name": f"E2E {name}",
        "query": "E2E-001--Traces.sql",
        "connection": "pstt_e2e_sqlite",
        "scheduling_mode": "cron",
        "cron": "0 2 * * *",
        "max_retries": 0,
        "parameters": {"DATA": "{date-1}"},
        "kafka_config": {"enabled": True, "topic": topic, "message_key_field": "BARCODE", "connection_name": "default"},
        "email_notification": {
            "enabled": True,
            "on_failure": True,
            "on_success": False,
            "recipients": ["ops@example.com", "dev@example.com"],
        },
        **changes,
    }
    (jobs / f"{name}.json").write_text(json.dumps(spec))
    return f"pstt_{name}"


def run_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=ROOT / "dags" / "pstt_jobs.py")
    assert bag.import_errors == {}
    return bag.dags[dag_id].test(logical_date=RUN_DATE, run_after=RUN_DATE)


def test_a_run_publishes_the_rows_of_the_day_before(
    airflow_db: Path, job_folder: Path, topic: str, consume: Callable[..., list], inbox: Inbox
) -> None:
    dag_id = write_spec(job_folder, "e2e_ok", topic)

    run = run_dag(dag_id)

    assert run.state == "success"
    records = consume(topic, expected=3)
    assert [record.key for record in records] == [b"RR1", b"RR2", b"RR3"]
    first = json.loads(records[0].value)
    assert first["data"] == {"BARCODE": "RR1", "TRKDATE": "2026-01-19", "STATUS": "OK"}
    assert first["metadata"]["dag_id"] == dag_id
    assert inbox.messages == []


def test_a_failing_run_sends_one_email_naming_job_parameters_counts_and_error(
    airflow_db: Path, job_folder: Path, topic: str, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.pstt.example:8080")
    (job_folder.parent / "queries" / "E2E-001--Traces.sql").write_text(QUERY.replace("FROM TRACES", "FROM NO_SUCH"))
    dag_id = write_spec(job_folder, "e2e_fail", topic, timezone="Europe/Rome")

    run = run_dag(dag_id)

    assert run.state == "failed"
    [(recipients, message)] = inbox.messages
    assert recipients == ["ops@example.com", "dev@example.com"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_payload(decode=True).decode() for part in message.get_payload())
    assert [part.get_content_type() for part in message.get_payload()] == ["text/plain", "text/html"]
    assert message["Subject"] == f"[PSTT] FAILED E2E e2e_fail ({dag_id}) - 2026-01-20 03:00:00 CET"
    for body in (text, html):
        assert "E2E e2e_fail" in body
        assert run.run_id in body
        assert "DATA=2026-01-19" in body
        assert "0 read; messages 0 sent, 0 failed" in body
        assert "no such table: NO_SUCH" in body
    [link] = [line.removeprefix("Log: ") for line in text.splitlines() if line.startswith("Log: ")]
    assert link.startswith("http://airflow.pstt.example:8080/")
    assert 'href="http://airflow.pstt.example:8080/' in html


def test_jinja_in_email_fields_never_reaches_the_smtp_server(
    airflow_db: Path, job_folder: Path, topic: str, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "TopSecretPassw0rd"
    monkeypatch.setenv("AIRFLOW_CONN_ADV_SECRET", json.dumps({"conn_type": "generic", "password": secret}))
    (job_folder.parent / "queries" / "E2E-001--Traces.sql").write_text(QUERY.replace("FROM TRACES", "FROM NO_SUCH"))
    hostile_email = {
        "enabled": True,
        "on_failure": True,
        "recipients": ["{{conn.adv_secret.password}}@example.com"],
        "from_email": "leak {{ conn.adv_secret.password }} {{ var.value.get('x','novar') }} <a@example.com>",
    }
    write_spec(job_folder, "e2e_hostile", topic, email_notification=hostile_email)
    dag_id = write_spec(
        job_folder, "e2e_near_miss", topic, description="{ conn.adv_secret.password } ' ~ conn.adv_secret.password"
    )

    validation = subprocess.run(
        [sys.executable, "-m", "pstt_provider.cli", "validate"],
        capture_output=True,
        text=True,
        cwd=job_folder.parent,
        check=False,
    )
    run = run_dag(dag_id)

    assert validation.returncode == 1
    assert "jobs/e2e_hostile.json: email_notification.recipients.0: " in validation.stdout
    assert "jobs/e2e_hostile.json: email_notification.from_email: '{{' is not allowed" in validation.stdout
    assert run.state == "failed"
    [(recipients, message)] = inbox.messages
    assert recipients == ["ops@example.com", "dev@example.com"]
    assert secret not in message.as_string()
    assert "novar" not in message.as_string()
