"""Spec -> JobConfig or `file: field: reason` problems; no Airflow, DB or broker involved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pstt_provider.factory.problems import Problem, SpecError
from pstt_provider.factory.validation import Validator

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_SPEC = FIXTURES / "specs" / "seed" / "export_cdg_tracce.json"
DEMO_SPEC = ROOT / "dags" / "jobs" / "demo_traces.json"


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    (tmp_path / "jobs").mkdir()
    shutil.copytree(ROOT / "queries", tmp_path / "queries")
    shutil.copy(FIXTURES / "queries" / "CDG-KAFKA-001--SelezioneTracceGiornaliere.sql", tmp_path / "queries")
    return tmp_path / "jobs"


def validator(jobs: Path, timezone: str = "UTC") -> Validator:
    return Validator(jobs, jobs.parent / "queries", default_timezone=timezone, display_base=jobs.parent)


def demo(**changes: Any) -> dict[str, Any]:
    spec = json.loads(DEMO_SPEC.read_text())
    for dotted, value in changes.items():
        target = spec
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return spec


_DELETE = object()


def write(folder: Path, name: str, spec: dict[str, Any] | str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


def problems_of(jobs: Path, spec: dict[str, Any] | str, name: str = "job.json") -> list[str]:
    path = write(jobs, name, spec)
    with pytest.raises(SpecError) as caught:
        validator(jobs).validate(path)
    return [str(problem) for problem in caught.value.problems]


def test_the_seed_spec_loads_unchanged(jobs: Path) -> None:
    path = shutil.copy(SEED_SPEC, jobs / "export_cdg_tracce.json")
    config = validator(jobs).validate(Path(path))
    spec = config.spec
    assert (spec.cron, spec.max_retries, spec.retry_delay, spec.timeout) == ("0 2 * * *", 3, 300, 3600)
    assert spec.kafka_config.topic == "pstt-traces"
    assert spec.kafka_config.message_key_field == "BARCODE"
    assert spec.kafka_config.kafka_conn_id == "produzione"
    assert spec.email_notification.addresses("failure") == ["admin@example.com", "kafka-team@example.com"]
    assert spec.email_notification.addresses("success") == []
    assert config.dag_id == "pstt_export_cdg_tracce"
    assert config.scheduled
    assert config.schedule == "0 2 * * *"
    assert [(p.name, p.required, p.default) for p in config.params] == [("DATA", True, "{date-1}")]


def test_the_same_spec_in_yaml_gives_the_same_config(jobs: Path) -> None:
    import yaml

    as_json = validator(jobs).validate(Path(shutil.copy(SEED_SPEC, jobs / "a.json")))
    yaml_path = write(jobs, "a.yaml", yaml.safe_dump(json.loads(SEED_SPEC.read_text())))
    as_yaml = validator(jobs).validate(yaml_path)
    assert as_yaml.spec == as_json.spec
    assert as_yaml.parameters == as_json.parameters


def test_kafka_connection_default_means_kafka_default(jobs: Path) -> None:
    path = write(jobs, "job.json", demo(kafka_config__connection_name="default"))
    assert validator(jobs).validate(path).spec.kafka_config.kafka_conn_id == "kafka_default"
    path = write(jobs, "job.json", demo(kafka_config__connection_name=_DELETE))
    assert validator(jobs).validate(path).spec.kafka_config.kafka_conn_id == "kafka_default"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"max_retry": 3}, "job.json: max_retry: unknown field; did you mean 'max_retries'?"),
        ({"kafka_config__topicc": "x"}, "job.json: kafka_config.topicc: unknown field; did you mean 'topic'?"),
        ({"cron": "0 25 * * *"}, "job.json: cron: invalid cron expression '0 25 * * *'"),
        ({"cron": _DELETE}, 'job.json: cron: scheduling_mode is "cron" but cron is empty'),
        ({"export_format": "csv"}, "job.json: export_format: export format 'csv' is not supported yet"),
        ({"timezone": "Europe/Roma"}, "job.json: timezone: unknown time zone 'Europe/Roma'"),
        ({"kafka_config__topic": "bad topic"}, "job.json: kafka_config.topic: 'bad topic' is not a Kafka topic"),
        ({"kafka_config__topic": _DELETE}, "job.json: kafka_config.topic: required field is missing"),
        ({"max_retries": -1}, "job.json: max_retries: Input should be greater than or equal to 0"),
        (
            {"parameters__DATA": "{dat-1}"},
            "job.json: parameters.DATA: unknown template {dat-1}; did you mean {date-1}?",
        ),
        ({"parameters__GIORNO": "1"}, "job.json: parameters.GIORNO: the query defines no parameter GIORNO"),
        (
            {"parameters__DATAA": "1"},
            "job.json: parameters.DATAA: the query defines no parameter DATAA; did you mean DATA?",
        ),
        ({"query": "nope.sql"}, "job.json: query: query file 'nope.sql' not found"),
        ({"query": "DEMO-001--TracceSpedizione.sql"}, "did you mean 'DEMO-001--TracceSpedizioni.sql'?"),
        ({"query": "../jobs/job.json"}, "job.json: query: '../jobs/job.json' points outside the queries folder"),
        (
            {"email_notification": {"enabled": True, "recipients": []}},
            "job.json: email_notification.recipients: e-mail is enabled but there are no recipients",
        ),
        (
            {"email_notification": {"enabled": True, "recipients": ["ops.example.com"]}},
            "job.json: email_notification.recipients.0: 'ops.example.com' is not an e-mail address",
        ),
    ],
)
def test_each_mistake_names_file_field_and_reason(jobs: Path, changes: dict[str, Any], expected: str) -> None:
    found = problems_of(jobs, demo(**changes))
    assert any(line.startswith(expected) or expected in line for line in found), found


def test_all_problems_of_one_spec_are_reported_together(jobs: Path) -> None:
    found = problems_of(jobs, demo(cron="61 * * * *", retry_delay="soon", kafka_config__batchsize=5))
    assert {line.split(": ")[1] for line in found} == {"cron", "retry_delay", "kafka_config.batchsize"}


def test_invalid_json_gives_line_and_column(jobs: Path) -> None:
    text = json.dumps(demo(), indent=2).replace('"enabled": true,', '"enabled": true,,', 1)
    (found,) = problems_of(jobs, text)
    assert found.startswith("jobs/job.json: -: invalid JSON at line ")
    assert "column" in found


def test_invalid_yaml_gives_line_and_column(jobs: Path) -> None:
    (found,) = problems_of(jobs, "name: x\nquery: [unclosed\n", name="job.yaml")
    assert found.startswith("jobs/job.yaml: -: invalid YAML at line ")


def test_duplicate_json_keys_are_errors(jobs: Path) -> None:
    (found,) = problems_of(jobs, '{"name": "a", "name": "b"}')
    assert found == "jobs/job.json: name: appears twice in the same object; keep one"


def test_a_top_level_list_is_an_error(jobs: Path) -> None:
    assert problems_of(jobs, "[1, 2]") == ["jobs/job.json: -: expected an object at the top level, found list"]


def test_a_required_define_without_any_value_is_an_error_for_scheduled_jobs(jobs: Path) -> None:
    (jobs.parent / "queries" / "Q--Req.sql").write_text("define D=  --Obbligatorio: Giorno\nSELECT &D AS K FROM T;\n")
    found = problems_of(jobs, demo(query="Q--Req.sql", parameters={}))
    assert found == ["jobs/job.json: parameters.D: the query requires D (Giorno) and has no default: give it a value"]


def test_a_manual_job_may_leave_a_required_define_to_the_trigger_form(jobs: Path) -> None:
    (jobs.parent / "queries" / "Q--Req.sql").write_text("define D=  --Obbligatorio: Giorno\nSELECT &D AS K FROM T;\n")
    path = write(jobs, "job.json", demo(query="Q--Req.sql", parameters={}, scheduling_mode="manual"))
    config = validator(jobs).validate(path)
    assert [(p.name, p.required, p.default) for p in config.params] == [("D", True, None)]
    assert config.schedule is None


def test_references_without_define_are_errors(jobs: Path) -> None:
    (jobs.parent / "queries" / "Q--Undeclared.sql").write_text("SELECT * FROM T WHERE D = :GIORNO;\n")
    found = problems_of(jobs, demo(query="Q--Undeclared.sql", parameters={}))
    assert found == [
        "jobs/job.json: query: Q--Undeclared.sql: the SQL uses :GIORNO (line 1) but no define line declares it; "
        "add one such as: define GIORNO='' --Opzionale: description"
    ]


def test_parameter_names_match_defines_case_insensitively(jobs: Path) -> None:
    path = write(jobs, "job.json", demo(parameters={"data": "{date}"}))
    config = validator(jobs).validate(path)
    assert "DATA" in config.parameters
    assert next(p for p in config.params if p.name == "DATA").spec_value == "{date}"


def test_parameters_become_jinja_that_a_trigger_value_overrides(jobs: Path) -> None:
    config = validator(jobs, "Europe/Rome").validate(write(jobs, "job.json", demo()))
    assert config.parameters["DATA"] == (
        "{{ pstt_param('DATA') if pstt_param('DATA') != '{date-1}' else "
        "(pstt_run_time('Europe/Rome').add(days=-1).strftime('%Y-%m-%d')) }}"
    )
    assert config.parameters["STATO"] == "{{ pstt_param('STATO') if pstt_param('STATO') is not none else '' }}"


def test_disabled_jobs_and_disabled_kafka_are_never_scheduled(jobs: Path) -> None:
    for changes in ({"enabled": False}, {"kafka_config__enabled": False}, {"scheduling_mode": "manual"}):
        config = validator(jobs).validate(write(jobs, "job.json", demo(**changes)))
        assert not config.scheduled
        assert config.schedule is None


def test_dag_ids_come_from_the_path_below_the_jobs_folder(jobs: Path) -> None:
    assert validator(jobs).validate(write(jobs, "team-a/daily traces.json", demo())).dag_id == (
        "pstt_team-a.daily_traces"
    )
    assert validator(jobs).validate(write(jobs, "x.json", demo(dag_id="custom"))).dag_id == "custom"


def test_duplicate_dag_ids_keep_the_first_and_report_the_second(jobs: Path) -> None:
    first = write(jobs, "a.json", demo(dag_id="same"))
    second = write(jobs, "b.json", demo(dag_id="same"))
    configs, problems = validator(jobs).validate_all([first, second])
    assert [config.display for config in configs] == ["jobs/a.json"]
    assert [str(problem) for problem in problems] == ["jobs/b.json: dag_id: 'same' is already used by jobs/a.json"]


def test_folder_defaults_fill_in_and_specs_override(jobs: Path) -> None:
    write(jobs, "_defaults.json", {"timezone": "Europe/Rome", "email_notification": {"recipients": ["a@x.it"]}})
    write(jobs, "team/_defaults.yaml", "kafka_config:\n  connection_name: produzione\nmax_retries: 5\n")
    spec = demo(email_notification={"enabled": True}, max_retries=_DELETE)
    spec["kafka_config"].pop("connection_name")
    config = validator(jobs).validate(write(jobs, "team/job.json", spec))
    assert config.timezone == "Europe/Rome"
    assert config.spec.max_retries == 5
    assert config.spec.kafka_config.kafka_conn_id == "produzione"
    assert config.spec.email_notification.addresses("failure") == ["a@x.it"]
    overridden = validator(jobs).validate(write(jobs, "team/own.json", demo(max_retries=1)))
    assert overridden.spec.max_retries == 1
    assert overridden.spec.kafka_config.kafka_conn_id == "kafka_default"


def test_a_specs_metadata_setting_replaces_its_folders_in_either_spelling(jobs: Path) -> None:
    write(jobs, "_defaults.json", {"kafka_config": {"include_metadata": False}})
    own = demo(kafka_config__include_metadata=_DELETE)
    own["kafka_config"]["metadata"] = "headers"
    assert validator(jobs).validate(write(jobs, "own.json", own)).spec.kafka_config.metadata == "headers"
    inherited = validator(jobs).validate(write(jobs, "inherited.json", demo(kafka_config__include_metadata=_DELETE)))
    assert inherited.spec.kafka_config.metadata == "none"


def test_a_bad_defaults_file_is_reported_against_itself(jobs: Path) -> None:
    write(jobs, "_defaults.json", {"timezon": "Europe/Rome"})
    found = problems_of(jobs, demo())
    assert found == [
        "jobs/_defaults.json: timezon: unknown field; did you mean 'timezone'?",
        "jobs/job.json: -: not built: the folder defaults jobs/_defaults.json are invalid",
    ]


@pytest.mark.parametrize("value", ["oracle", "generic"])
def test_a_spec_that_still_names_a_connection_type_is_told_to_delete_it(jobs: Path, value: str) -> None:
    assert problems_of(jobs, demo(connection_type=value)) == [
        "jobs/job.json: connection_type: no longer used: factory DAGs always use SqlToKafkaOperator, and the "
        "database's behaviour (fetch size, Oracle tuning) now follows the type of the Airflow connection "
        "`connection`; delete the field"
    ]


def test_a_cross_field_rule_of_a_section_is_reported_with_the_other_field_problems(jobs: Path) -> None:
    found = problems_of(jobs, demo(max_retries=-1, email_notification={"enabled": True}))
    assert {line.split(": ")[1] for line in found} == {"max_retries", "email_notification.recipients"}


def test_a_missing_jobs_folder_is_a_problem_not_zero_dags(tmp_path: Path) -> None:
    missing = Validator(tmp_path / "nowhere", tmp_path, default_timezone="UTC", display_base=tmp_path)
    assert missing.validate_folder() == (
        [],
        [Problem(str(tmp_path / "nowhere"), "-", "jobs folder not found (check PSTT_JOBS_DIR)")],
    )


def test_checkpoint_rows_without_an_order_to_resume_from_is_a_problem(jobs: Path) -> None:
    assert problems_of(jobs, demo(checkpoint_rows=1000)) == [
        "jobs/job.json: checkpoint_rows: needs a deterministic order to resume from: set incremental, or order_by "
        "naming a unique key of the result"
    ]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"incremental": {"column": "ts; DROP TABLE x"}},
            "incremental.column: 'ts; DROP TABLE x' is not a plain column",
        ),
        ({"incremental": {"column": "ts", "lag_seconds": -1}}, "incremental.lag_seconds: Input should be greater"),
        ({"incremental": {"column": "ts"}, "order_by": ["id"]}, "order_by: incremental already orders the rows"),
        ({"order_by": []}, "order_by: List should have at least 1 item"),
        ({"incremental": {"tiebreaker": "id"}}, "incremental.column: required field is missing"),
    ],
)
def test_an_unsafe_or_incomplete_ordering_is_a_problem_naming_its_field(jobs: Path, changes, problem: str) -> None:
    (found,) = problems_of(jobs, demo(**changes))
    assert found.startswith(f"jobs/job.json: {problem}")


def test_parallel_with_incremental_is_refused_until_ranges_keep_positions(jobs: Path) -> None:
    spec = demo(incremental={"column": "TS"}, parallel={"split_by": "ID", "partitions": 4})
    assert problems_of(jobs, spec) == [
        "jobs/job.json: parallel: does not combine with incremental yet: use one of them"
    ]
