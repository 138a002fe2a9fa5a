"""
``metadata: envelope | headers | none``: the spec field and PSTT Tool's ``include_metadata``, the operator argument
they become, and the headers a ``headers`` run puts on every message (dead letters included).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pstt_provider.factory.builder import build_dag
from pstt_provider.factory.description import describe
from pstt_provider.factory.models import JobSpec, KafkaConfig, job_schema
from pstt_provider.factory.problems import validation_problems
from pstt_provider.factory.task_arguments import TASK_ID
from pstt_provider.factory.validation import Validator
from pstt_provider.operators.oracle_to_kafka import OracleToKafkaOperator
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.serialization import build_metadata, metadata_headers

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_SPEC = FIXTURES / "specs" / "seed" / "export_cdg_tracce.json"
EXTRACTED = dt.datetime(2026, 1, 20, 3, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def kafka_config(**fields: Any) -> KafkaConfig:
    return KafkaConfig.model_validate({"topic": "t", "message_key_field": "ID", **fields})


def seed_config(tmp_path: Path, **kafka_fields: Any):
    spec = json.loads(SEED_SPEC.read_text())
    spec["kafka_config"] = {key: value for key, value in spec["kafka_config"].items() if key != "include_metadata"}
    spec["kafka_config"].update(kafka_fields)
    (tmp_path / "seed.json").write_text(json.dumps(spec))
    validator = Validator(tmp_path, FIXTURES / "queries", default_timezone="UTC", display_base=tmp_path)
    return validator.validate(tmp_path / "seed.json")


def operator(**kwargs: Any) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish", conn_id="db", sql="SELECT 1 AS id", topic="t", message_key_field="id", **kwargs
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "envelope"),
        ({"metadata": "headers"}, "headers"),
        ({"metadata": "none"}, "none"),
        ({"include_metadata": True}, "envelope"),
        ({"include_metadata": False}, "none"),
        ({"include_metadata": False, "metadata": "none"}, "none"),
        ({"include_metadata": True, "metadata": "envelope"}, "envelope"),
    ],
)
def test_the_spec_says_where_the_metadata_goes_in_either_spelling(fields: dict[str, Any], expected: str) -> None:
    assert kafka_config(**fields).metadata == expected


@pytest.mark.parametrize(
    ("include_metadata", "metadata"), [(False, "headers"), (False, "envelope"), (True, "none"), (True, "headers")]
)
def test_contradicting_metadata_and_include_metadata_is_a_problem_naming_both(
    include_metadata: bool, metadata: str
) -> None:
    spec = json.loads(SEED_SPEC.read_text())
    spec["kafka_config"].update(include_metadata=include_metadata, metadata=metadata)
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(spec)
    [problem] = validation_problems("seed.json", caught.value, JobSpec)
    assert problem.field == "kafka_config.metadata"
    assert "include_metadata" in problem.reason
    assert repr(metadata) in problem.reason


def test_an_unknown_metadata_mode_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"'envelope', 'headers' or 'none'"):
        kafka_config(metadata="header", include_metadata=True)


def test_the_schema_offers_the_three_modes_with_envelope_as_default() -> None:
    field = job_schema()["$defs"]["KafkaConfig"]["properties"]["metadata"]
    assert (field["enum"], field["default"]) == (["envelope", "headers", "none"], "envelope")


def test_the_builder_passes_metadata_and_render_shows_it(tmp_path: Path) -> None:
    config = seed_config(tmp_path, metadata="headers")
    task = build_dag(config).get_task(TASK_ID)
    assert task.metadata == "headers"
    assert describe(config)["metadata"] == "headers"


def test_the_seed_include_metadata_true_still_builds_an_envelope_task(tmp_path: Path) -> None:
    config = seed_config(tmp_path, include_metadata=True)
    assert build_dag(config).get_task(TASK_ID).metadata == "envelope"
    assert describe(seed_config(tmp_path, include_metadata=False))["metadata"] == "none"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "envelope"),
        ({"metadata": "headers"}, "headers"),
        ({"include_metadata": True}, "envelope"),
        ({"include_metadata": False}, "none"),
        ({"include_metadata": False, "metadata": "none"}, "none"),
    ],
)
def test_the_operator_takes_metadata_or_the_older_include_metadata(kwargs: dict[str, Any], expected: str) -> None:
    assert operator(**kwargs).metadata == expected
    assert (
        OracleToKafkaOperator(
            task_id="o", sql="SELECT 1 FROM dual", topic="t", message_key_field="id", **kwargs
        ).metadata
        == expected
    )


def test_the_operator_refuses_contradicting_or_unknown_metadata() -> None:
    with pytest.raises(ValueError, match=r"include_metadata=False means metadata='none', but metadata='headers'"):
        operator(metadata="headers", include_metadata=False)
    with pytest.raises(ValueError, match=r"metadata must be one of envelope, headers, none, not 'envelope2'"):
        operator(metadata="envelope2")


def test_each_metadata_field_becomes_a_utf8_header_named_after_it() -> None:
    metadata = build_metadata(
        dag_id="pstt_cdg",
        run_id="manual__2026-01-20",
        task_id="export_to_kafka",
        query="Q è.sql",
        extracted_at=EXTRACTED,
    )

    headers = metadata_headers(metadata)

    assert headers == [
        ("pstt-schema-version", b"1.0"),
        ("pstt-system", b"pstt-provider"),
        ("pstt-dag-id", b"pstt_cdg"),
        ("pstt-run-id", b"manual__2026-01-20"),
        ("pstt-task-id", b"export_to_kafka"),
        ("pstt-query", "Q è.sql".encode()),
        ("pstt-extracted-at", b"2026-01-20T02:00:05+00:00"),
    ]
    assert [name.removeprefix("pstt-").replace("-", "_") for name, _ in headers] == list(metadata)
