"""`pstt validate`, `pstt render --json` and `pstt schema` as a user runs them, plus `airflow tasks render`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pstt_provider.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_SPEC = FIXTURES / "specs" / "seed" / "export_cdg_tracce.json"
SEED_ENV = {"PSTT_JOBS_DIR": str(SEED_SPEC.parent), "PSTT_QUERIES_DIR": str(FIXTURES / "queries")}
RENDER_KEYS = {
    "dag_id",
    "schedule",
    "timezone",
    "retries",
    "retry_delay_seconds",
    "execution_timeout_seconds",
    "params",
    "task_ids",
    "topic",
    "message_key_field",
    "kafka_conn_id",
    "db_conn_id",
    "notifications",
}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, timeout=300)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def pstt(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Runs ``pstt ARGS`` in this process (Airflow imported once) from the repo root with the given env."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Outcome:
        monkeypatch.chdir(ROOT)
        for name in ("PSTT_JOBS_DIR", "PSTT_QUERIES_DIR"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return invoke


def test_the_console_script_exits_1_on_broken_specs() -> None:
    result = run(str(Path(sys.executable).with_name("pstt")), "validate", "tests/fixtures/specs/broken", env={})
    assert result.returncode == 1
    assert "tests/fixtures/specs/broken/csv_export.json: export_format: " in result.stdout


def test_validate_passes_the_repo_specs_by_default(pstt: Callable[..., Outcome]) -> None:
    result = pstt("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("job spec file(s) valid")


def test_validate_prints_one_line_per_problem_and_exits_1(pstt: Callable[..., Outcome]) -> None:
    result = pstt("validate", "tests/fixtures/specs/broken")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    assert all(re.match(r"^tests/fixtures/specs/broken/\w+\.json: [\w.-]+: .+", line) for line in lines), lines
    assert "tests/fixtures/specs/broken/bad_cron.json: cron: invalid cron expression '0 25 * * *'" in result.stdout
    assert "7 invalid of 7 job spec file(s)" in result.stderr


def test_validate_accepts_several_paths_and_reports_a_missing_one(pstt: Callable[..., Outcome]) -> None:
    result = pstt("validate", "dags/jobs/demo_traces.json", "tests/fixtures/specs/nowhere")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["tests/fixtures/specs/nowhere: -: no such file or directory"]


def test_render_json_of_the_seed_spec(pstt: Callable[..., Outcome]) -> None:
    result = pstt("render", str(SEED_SPEC), "--json", "--logical-date", "2026-01-20T02:00:00", env=SEED_ENV)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert set(rendered) >= RENDER_KEYS
    assert rendered["schedule"] == "0 2 * * *"
    assert rendered["retries"] == 3
    assert rendered["retry_delay_seconds"] == 300
    assert rendered["execution_timeout_seconds"] == 3600
    assert rendered["rendered_parameters"] == {"DATA": "2026-01-19"}
    assert rendered["params"]["DATA"]["required"] is True
    assert rendered["notifications"] == {
        "on_failure": ["admin@example.com", "kafka-team@example.com"],
        "on_success": [],
    }
    assert (rendered["topic"], rendered["message_key_field"]) == ("pstt-traces", "BARCODE")
    assert (rendered["kafka_conn_id"], rendered["db_conn_id"]) == ("produzione", "A00-CDG-Collaudo")
    assert rendered["task_ids"] == ["export_to_kafka"]


def test_render_evaluates_dates_in_the_jobs_timezone(pstt: Callable[..., Outcome], tmp_path: Path) -> None:
    spec = json.loads(SEED_SPEC.read_text())
    spec.update(timezone="Europe/Rome", cron="30 0 * * *", parameters={"DATA": "{date}"})
    (tmp_path / "rome.json").write_text(json.dumps(spec))
    env = {**SEED_ENV, "PSTT_JOBS_DIR": str(tmp_path)}
    result = pstt("render", str(tmp_path / "rome.json"), "--json", "--logical-date", "2026-01-19T23:30:00Z", env=env)
    rendered = json.loads(result.stdout)
    assert rendered["timezone"] == "Europe/Rome"
    assert rendered["rendered_parameters"] == {"DATA": "2026-01-20"}


def test_schema_is_the_json_schema_of_a_spec(pstt: Callable[..., Outcome]) -> None:
    result = pstt("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"name", "query", "kafka_config", "timezone"} <= set(schema["properties"])


def test_airflow_tasks_render_gives_the_day_before_the_run_date(airflow_db: Path, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    shutil.copy(SEED_SPEC, jobs)
    env = {**SEED_ENV, "PSTT_JOBS_DIR": str(jobs), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags")}
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = run(
        airflow, "tasks", "render", "pstt_export_cdg_tracce", "export_to_kafka", "2026-01-20T02:00:00+00:00", env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "{'DATA': '2026-01-19'}" in result.stdout
    assert "pstt-traces" in result.stdout
