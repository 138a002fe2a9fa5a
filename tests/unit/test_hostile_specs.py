"""
Hostile specs against the real DagBag, the ``pstt`` command, a native library and a listening socket:
each is refused with file, field and reason, builds no DAG, loads nothing and connects nowhere, and the
valid spec beside it still becomes its DAG.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "dags" / "jobs" / "demo_traces.json").read_text())
CONSTRUCTOR = """
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void ran(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fprintf(f, "code ran in pid %%d", getpid()); fclose(f); }
}
"""


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    jobs, queries = tmp_path / "jobs", tmp_path / "queries"
    jobs.mkdir()
    shutil.copytree(ROOT / "queries", queries)
    monkeypatch.setenv("PSTT_JOBS_DIR", str(jobs))
    monkeypatch.setenv("PSTT_QUERIES_DIR", str(queries))
    return jobs, queries


def spec(**changes: Any) -> dict[str, Any]:
    result = json.loads(json.dumps(DEMO))
    for key, value in changes.items():
        if key.startswith("kafka_config__"):
            result["kafka_config"][key.removeprefix("kafka_config__")] = value
        else:
            result[key] = value
    return result


def write(jobs: Path, name: str, content: dict[str, Any] | str) -> None:
    path = jobs / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")


def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=ROOT / "dags")


def pstt_validate(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pstt_provider.cli", "validate"], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_each_spec_that_would_hide_the_others_is_its_own_import_error(folders: tuple[Path, Path]) -> None:
    jobs, _ = folders
    write(jobs, "valid.json", spec())
    bad = {
        "tz_europe.json": (spec(timezone="Europe"), "timezone: unknown time zone 'Europe'"),
        "tz_america.json": (spec(timezone="America"), "timezone: unknown time zone 'America'"),
        "tz_long.json": (spec(timezone="E" * 5000), "timezone: String should have at most 64 characters"),
        "nul_query.json": (spec(query="DEMO-001\x00.sql"), "query: must be one line of text"),
        "long_query.json": (spec(query="q" * 300), "query: String should have at most 255 characters"),
        "deep.json": ('{"name": ' + "[" * 1000 + "]" * 1000 + "}", "deep.json: "),
        "retry_delay.json": (spec(retry_delay=10**20), "retry_delay: Input should be less than or equal to 604800"),
    }
    for name, (content, _) in bad.items():
        write(jobs, name, content)
    deep_path = "/".join(["a_rather_long_folder_name"] * 11) + "/job.json"
    write(jobs, deep_path, spec())

    bag = dagbag()

    assert sorted(bag.dags) == ["pstt_valid"]
    [(failing_file, message)] = bag.import_errors.items()
    assert failing_file.endswith("pstt_jobs_validation.py")
    for name, (_, problem) in bad.items():
        assert f"jobs/{name}: " in message, name
        assert problem in message, name
    assert f"jobs/{deep_path}: dag_id: the DAG id made from the spec's path is" in message
    assert f"{len(bad) + 1} invalid PSTT job spec file(s)" in message


def test_pstt_validate_reports_the_same_specs_with_file_field_and_reason(folders: tuple[Path, Path]) -> None:
    jobs, _ = folders
    write(jobs, "valid.json", spec())
    write(jobs, "tz.json", spec(timezone="US"))
    write(jobs, "delay.json", spec(retry_delay=10**20))

    result = pstt_validate(jobs.parent)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("jobs/tz.json: timezone: unknown time zone 'US'") for line in lines), lines
    assert any(line.startswith("jobs/delay.json: retry_delay: Input should be less than") for line in lines), lines
    assert "2 invalid of 3 job spec file(s)" in result.stderr


def test_a_spec_asking_to_load_a_native_library_is_refused_and_nothing_runs(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    jobs, queries = folders
    marker = tmp_path / "code-ran"
    source = tmp_path / "evil.c"
    source.write_text(CONSTRUCTOR % marker)
    library = queries / "evil.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    write(jobs, "valid.json", spec())
    write(jobs, "evil.json", spec(kafka_config__producer_config={"plugin.library.paths": str(library)}))

    result = pstt_validate(jobs.parent)
    bag = dagbag()

    assert result.returncode == 1
    assert result.stdout.startswith(
        "jobs/evil.json: kafka_config.producer_config: plugin.library.paths: loads a library or reads a file"
    )
    assert sorted(bag.dags) == ["pstt_valid"]
    assert "jobs/evil.json: kafka_config.producer_config: plugin.library.paths" in next(
        iter(bag.import_errors.values())
    )
    assert not marker.exists()


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it is offered."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.mark.parametrize(
    "override",
    [
        {"bootstrap.servers": "127.0.0.1:{port}"},
        {"security.protocol": "PLAINTEXT", "bootstrap.servers": "127.0.0.1:{port}"},
        {"sasl.username": "someone", "metadata.broker.list": "127.0.0.1:{port}"},
    ],
)
def test_a_spec_cannot_send_the_producer_to_another_host(
    folders: tuple[Path, Path], listener: Listener, override: dict[str, str]
) -> None:
    jobs, _ = folders
    config = {key: value.format(port=listener.port) for key, value in override.items()}
    write(jobs, "valid.json", spec())
    write(jobs, "elsewhere.json", spec(kafka_config__producer_config=config))

    result = pstt_validate(jobs.parent)
    bag = dagbag()

    assert result.returncode == 1
    assert result.stdout.startswith("jobs/elsewhere.json: kafka_config.producer_config: ")
    for key in config:
        assert f"{key}: addressing and security come from the Airflow Kafka connection only" in result.stdout
    assert sorted(bag.dags) == ["pstt_valid"]
    assert listener.connections == 0
