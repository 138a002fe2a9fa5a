"""A DagBag over dags/ builds every valid spec and shows every broken one, with file and field, as an import error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "specs" / "broken"
EXPECTED_PROBLEMS = {
    "unknown_field.json": "kafka_config.topik: unknown field; did you mean 'topic'?",
    "bad_cron.json": "cron: invalid cron expression '0 25 * * *'",
    "missing_query.json": "query: query file 'DEMO-001--TracceSpedizione.sql' not found",
    "unknown_template.json": "parameters.DATA: unknown template {dat-1}; did you mean {date-1}?",
    "undefined_parameter.json": "parameters.GIORNO: the query defines no parameter GIORNO",
    "invalid_json.json": "-: invalid JSON at line 8, column 19",
    "csv_export.json": "export_format: export format 'csv' is not supported yet",
}


def dagbag(jobs: Path, monkeypatch: pytest.MonkeyPatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("PSTT_JOBS_DIR", str(jobs))
    monkeypatch.setenv("PSTT_QUERIES_DIR", str(ROOT / "queries"))
    return DagBag(dag_folder=ROOT / "dags")


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "dags" / "jobs", tmp_path / "jobs")
    return tmp_path / "jobs"


def test_valid_specs_load_and_broken_ones_show_as_an_import_error(jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    valid = dagbag(jobs, monkeypatch)
    assert valid.import_errors == {}
    shutil.copytree(BROKEN, jobs / "broken")

    bag = dagbag(jobs, monkeypatch)

    assert sorted(bag.dags) == sorted(valid.dags)
    for dag in bag.dags.values():
        dag.params.validate()
    assert "pstt_demo_traces" in bag.dags
    assert not any(dag_id.startswith("pstt_broken") for dag_id in bag.dags)
    [(failing_file, message)] = bag.import_errors.items()
    assert failing_file.endswith("pstt_jobs_validation.py")
    for name, problem in EXPECTED_PROBLEMS.items():
        assert f"broken/{name}: {problem}" in message, name
    assert f"{len(EXPECTED_PROBLEMS)} invalid PSTT job spec file(s)" in message


def test_the_demo_dag_is_scheduled_daily_in_its_own_task(jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = dagbag(jobs, monkeypatch).dags["pstt_demo_traces"]
    assert dag.timetable.expression == "0 2 * * *"
    assert dag.catchup is False
    assert dag.task_ids == ["export_to_kafka"]
    assert dag.params.get_param("DATA").value == "{date-1}"
    assert dag.params.get_param("DATA").schema["type"] == "string"
    assert dag.params.get_param("STATO").schema["type"] == ["null", "string"]


def test_a_disabled_spec_builds_a_dag_that_is_never_scheduled(jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        (jobs / "demo_traces.json")
        .read_text()
        .replace('"enabled": true,\n  "timeout"', '"enabled": false,\n  "timeout"')
    )
    (jobs / "demo_traces.json").write_text(text)
    dag = dagbag(jobs, monkeypatch).dags["pstt_demo_traces"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert "pstt:disabled" in dag.tags
