"""The DAG object a spec becomes: Airflow settings, one SqlToKafkaOperator whatever the database, Params and Jinja."""

from __future__ import annotations

import datetime
import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from pstt_provider.factory.builder import build_dag, build_dags
from pstt_provider.factory.validation import Validator
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_SPEC = FIXTURES / "specs" / "seed" / "export_cdg_tracce.json"


def seed_dag(tmp_path: Path, **changes: Any):
    spec = {**json.loads(SEED_SPEC.read_text()), **changes}
    (tmp_path / "seed.json").write_text(json.dumps(spec))
    validator = Validator(tmp_path, FIXTURES / "queries", default_timezone="UTC", display_base=tmp_path)
    return build_dag(validator.validate(tmp_path / "seed.json"))


def render_parameters(dag, *, params: dict[str, Any] | None = None, logical_date=None, run_after=None):
    task = dag.get_task("export_to_kafka")
    context: dict[str, Any] = {
        "params": {**{name: dag.params[name] for name in dag.params}, **(params or {})},
        "dag_run": SimpleNamespace(run_after=run_after or logical_date),
    }
    if logical_date is not None:
        context["logical_date"] = logical_date
    environment = dag.get_template_env()
    return {name: environment.from_string(text).render(context) for name, text in task.parameters.items()}


def test_the_seed_spec_becomes_the_expected_dag(tmp_path: Path) -> None:
    dag = seed_dag(tmp_path)
    task = dag.get_task("export_to_kafka")
    assert dag.dag_id == "pstt_seed"
    assert dag.dag_display_name == "Export CDG Tracce to Kafka"
    assert dag.timetable.expression == "0 2 * * *"
    assert (task.retries, task.retry_delay.total_seconds(), task.execution_timeout.total_seconds()) == (3, 300, 3600)
    assert (task.topic, task.message_key_field, task.kafka_config_id, task.conn_id) == (
        "pstt-traces",
        "BARCODE",
        "produzione",
        "A00-CDG-Collaudo",
    )
    # The seed's kafka_config.batch_size (100) is accepted but no longer throttles the fetch: the operator's own.
    assert task.batch_size == inspect.signature(SqlToKafkaOperator).parameters["batch_size"].default
    assert task.metadata == "envelope"
    [notifier] = task.on_failure_callback
    assert notifier.to == ["admin@example.com", "kafka-team@example.com"]
    assert task.on_success_callback == []
    assert type(task) is SqlToKafkaOperator


def test_data_renders_to_the_day_before_unless_the_trigger_gives_a_value(tmp_path: Path) -> None:
    dag = seed_dag(tmp_path)
    fired = pendulum.datetime(2026, 1, 20, 2, tz="UTC")
    assert render_parameters(dag, logical_date=fired) == {"DATA": "2026-01-19"}
    assert render_parameters(dag, logical_date=fired, params={"DATA": "2025-12-31"}) == {"DATA": "2025-12-31"}
    manual = pendulum.datetime(2026, 2, 1, 9, tz="UTC")
    assert render_parameters(dag, run_after=manual) == {"DATA": "2026-01-31"}


def test_a_job_at_0030_in_rome_reads_its_own_day(tmp_path: Path) -> None:
    dag = seed_dag(tmp_path, timezone="Europe/Rome", cron="30 0 * * *", parameters={"DATA": "{date}"})
    assert str(dag.timetable.timezone.name) == "Europe/Rome"
    fired = pendulum.datetime(2026, 1, 20, 0, 30, tz="Europe/Rome").in_timezone("UTC")
    assert render_parameters(dag, logical_date=fired) == {"DATA": "2026-01-20"}


def test_required_params_are_marked_required_for_the_trigger_form(tmp_path: Path) -> None:
    dag = seed_dag(tmp_path)
    param = dag.params.get_param("DATA")
    assert param.schema["type"] == "string"
    assert param.value == "{date-1}"
    assert "Giorno delle tracce" in param.description
    dag.params.validate()


def test_an_oracle_connection_gets_the_same_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_A00-CDG-COLLAUDO", "oracle://user:secret@db.example:1521/?service_name=CDG")
    assert type(seed_dag(tmp_path).get_task("export_to_kafka")) is SqlToKafkaOperator


def test_every_kafka_option_of_the_spec_reaches_the_task(tmp_path: Path) -> None:
    kafka = {
        **json.loads(SEED_SPEC.read_text())["kafka_config"],
        "delivery": "exactly_once",
        "null_key": "skip",
        "dead_letter_topic": "pstt-traces-dlq",
        "producer_config": {"linger.ms": 50},
        "topic_config": {"partitions": 3, "config": {"retention.ms": "86400000"}},
    }
    task = seed_dag(tmp_path, kafka_config=kafka).get_task("export_to_kafka")
    assert (task.delivery, task.null_key, task.dead_letter_topic) == ("exactly_once", "skip", "pstt-traces-dlq")
    assert task.producer_config == {"linger.ms": 50}
    assert task.topic_config == {"partitions": 3, "replication_factor": None, "config": {"retention.ms": "86400000"}}


def test_success_mail_and_disabled_jobs(tmp_path: Path) -> None:
    email = {"enabled": True, "on_success": True, "on_failure": False, "recipients": ["ops@example.com"]}
    dag = seed_dag(tmp_path, email_notification=email, enabled=False)
    task = dag.get_task("export_to_kafka")
    assert [notifier.to for notifier in task.on_success_callback] == [["ops@example.com"]]
    assert task.on_failure_callback == []
    assert type(dag.timetable).__name__ == "NullTimetable"


def test_the_repo_jobs_folder_builds_without_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PSTT_JOBS_DIR", raising=False)
    monkeypatch.delenv("PSTT_QUERIES_DIR", raising=False)
    dags, problems = build_dags(ROOT)
    assert problems == []
    assert {"pstt_demo_traces", "pstt_demo_traces_on_demand"} <= set(dags)


def test_incremental_and_checkpoints_reach_the_task(tmp_path: Path) -> None:
    incremental = {"column": "TRKDATE", "tiebreaker": "BARCODE", "initial": "2026-01-01", "lag_seconds": 120}
    task = seed_dag(tmp_path, incremental=incremental, checkpoint_rows=50_000).get_task("export_to_kafka")

    assert (task.incremental.columns, task.incremental.lag_seconds) == (("TRKDATE", "BARCODE"), 120)
    assert task.incremental.initial == datetime.date(2026, 1, 1)
    assert (task.checkpoint_rows, task.order_by) == (50_000, ())


def test_a_parallel_job_plans_ranges_then_maps_the_export_over_them(tmp_path: Path) -> None:
    dag = seed_dag(tmp_path, parallel={"split_by": "BARCODE_ID", "partitions": 4}, max_retries=2)
    split, export = dag.get_task("split_ranges"), dag.get_task("export_to_kafka")

    assert (split.split_by, split.partitions, split.sql_file) == ("BARCODE_ID", 4, export.partial_kwargs["sql_file"])
    assert export.partial_kwargs["retries"] == split.retries == 2
    assert [task.task_id for task in split.downstream_list] == ["export_to_kafka"]
    assert export.expand_input.value["split_range"].operator is split
