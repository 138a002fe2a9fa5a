"""
A job's topic as an Airflow Asset: the outlet every job's DAG declares, the upstream assets a spec's ``schedule``
runs it on, what validation refuses, and what ``pstt render`` shows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset
from helpers.summaries import tried

from pstt_provider import assets
from pstt_provider.factory.builder import build_dag
from pstt_provider.factory.description import describe
from pstt_provider.factory.validation import SpecError, Validator

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_SPEC = FIXTURES / "specs" / "seed" / "export_cdg_tracce.json"
UPSTREAM = "kafka://broker-1.example:9092/pstt-orders"


def seed_config(tmp_path: Path, **changes: Any):
    spec = {**json.loads(SEED_SPEC.read_text()), **changes}
    (tmp_path / "seed.json").write_text(json.dumps(spec))
    validator = Validator(tmp_path, FIXTURES / "queries", default_timezone="UTC", display_base=tmp_path)
    return validator.validate(tmp_path / "seed.json")


def problems(tmp_path: Path, **changes: Any) -> list[str]:
    with pytest.raises(SpecError) as raised:
        seed_config(tmp_path, **changes)
    return [f"{problem.field}: {problem.reason}" for problem in raised.value.problems]


@pytest.fixture
def produzione(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's Kafka connection, as an environment connection with two bootstrap servers."""
    extra = {"bootstrap.servers": "SASL_SSL://kafka-a.example:9093,kafka-b.example:9093"}
    monkeypatch.setenv("AIRFLOW_CONN_PRODUZIONE", json.dumps({"conn_type": "kafka", "extra": extra}))


def test_the_export_task_declares_its_topic_on_the_connections_first_server(tmp_path: Path, produzione: None) -> None:
    dag = build_dag(seed_config(tmp_path))

    assert dag.get_task("export_to_kafka").outlets == [Asset("kafka://kafka-a.example:9093/pstt-traces")]


def test_without_a_readable_kafka_connection_the_task_has_no_outlet_and_render_says_why(tmp_path: Path) -> None:
    config = seed_config(tmp_path)

    assert build_dag(config, lambda conn_id: None).get_task("export_to_kafka").outlets == []
    assert describe(config)["outlets"] == []


def test_a_spec_scheduled_on_assets_runs_when_any_of_them_updates(tmp_path: Path) -> None:
    other = "s3://exports/daily.csv"
    config = seed_config(tmp_path, scheduling_mode="manual", schedule={"assets": [UPSTREAM, other]})

    shown = describe(config)

    assert (shown["schedule"], shown["assets"], shown["scheduled"]) == (None, [UPSTREAM, other], True)
    assert [asset.uri for asset in build_dag(config).timetable.asset_condition.objects] == [UPSTREAM, other]


def test_a_cron_and_assets_together_run_on_either(tmp_path: Path) -> None:
    config = seed_config(tmp_path, schedule={"assets": [UPSTREAM]})

    shown = describe(config)

    assert (shown["schedule"], shown["assets"]) == ("0 2 * * *", [UPSTREAM])


def test_assets_without_a_cron_need_no_scheduling_mode(tmp_path: Path) -> None:
    spec = json.loads(SEED_SPEC.read_text())
    del spec["scheduling_mode"], spec["cron"]
    (tmp_path / "seed.json").write_text(json.dumps({**spec, "schedule": {"assets": [UPSTREAM]}}))
    validator = Validator(tmp_path, FIXTURES / "queries", default_timezone="UTC", display_base=tmp_path)

    assert describe(validator.validate(tmp_path / "seed.json"))["assets"] == [UPSTREAM]


def test_a_disabled_job_is_not_run_by_its_assets(tmp_path: Path) -> None:
    config = seed_config(tmp_path, enabled=False, schedule={"assets": [UPSTREAM]})

    assert (describe(config)["assets"], describe(config)["schedule"]) == ([], None)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("pstt-orders", "is not an asset URI"),
        ("kafka://broker:9092", "is not a Kafka asset"),
        ("kafka:///pstt-orders", "is not a Kafka asset"),
        ("airflow://dags/x", "the airflow:// scheme is Airflow's own"),
        ("kafka://broker:9092/{{ conn.produzione.password }}", "Jinja is refused"),
        ("kafka://broker:9092/topic with spaces", "is not an asset URI"),
    ],
)
def test_an_asset_that_is_not_a_uri_is_refused_naming_the_field(tmp_path: Path, uri: str, reason: str) -> None:
    [problem] = problems(tmp_path, schedule={"assets": [uri]})

    assert problem.startswith("schedule.assets.0: ")
    assert reason in problem


def test_an_asset_listed_twice_is_refused(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, schedule={"assets": [UPSTREAM, UPSTREAM]})

    assert problem == f"schedule.assets: listed more than once: {UPSTREAM}"


def test_a_job_cannot_run_on_its_own_topic(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, schedule={"assets": ["kafka://kafka-a.example:9093/pstt-traces"]})

    assert problem.startswith("schedule.assets: kafka://kafka-a.example:9093/pstt-traces is this job's own topic")


def test_an_empty_asset_list_is_refused(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, schedule={"assets": []})

    assert problem.startswith("schedule.assets: ")


def test_a_parallel_jobs_asset_is_announced_after_all_its_parts(tmp_path: Path, produzione: None) -> None:
    dag = build_dag(seed_config(tmp_path, parallel={"split_by": "BARCODE", "partitions": 4}))
    announce = dag.get_task("announce_topic")

    assert dag.get_task("export_to_kafka").outlets == []
    assert announce.outlets == [Asset("kafka://kafka-a.example:9093/pstt-traces")]
    assert announce.upstream_task_ids == {"export_to_kafka"}


def test_the_event_extra_carries_the_counts_and_an_incremental_jobs_position() -> None:
    summary = dataclasses.replace(
        tried("d", "pstt-traces", 10, 0, [], messages_skipped=2),
        rows=12,
        position_after={"UPDATED_AT": "2026-12-01T10:00:00"},
    )

    assert assets.event_extra(summary, incremental=True) == {
        "rows": 12,
        "messages": 10,
        "position": {"UPDATED_AT": "2026-12-01T10:00:00"},
    }
    assert assets.event_extra(summary, incremental=False) == {"rows": 12, "messages": 10}


@pytest.mark.parametrize(
    ("servers", "first"),
    [("127.0.0.1:9092", "127.0.0.1:9092"), (" a:1 , b:2", "a:1"), ("SASL_SSL://k:9093,k2:9093", "k:9093")],
)
def test_the_asset_host_is_the_first_bootstrap_server(servers: str, first: str) -> None:
    assert assets.first_server(servers) == first
