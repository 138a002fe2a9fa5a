"""The job spec's value formats: what reaches the task, and the registry that avro and json_schema need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pstt_provider.factory.builder import build_dag
from pstt_provider.factory.validation import SpecError, Validator

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED_SPEC = FIXTURES / "specs" / "seed" / "export_cdg_tracce.json"


def seed_with_kafka(tmp_path: Path, **kafka: Any):
    spec = json.loads(SEED_SPEC.read_text())
    spec["kafka_config"] = {**spec["kafka_config"], **kafka}
    (tmp_path / "seed.json").write_text(json.dumps(spec))
    validator = Validator(tmp_path, FIXTURES / "queries", default_timezone="UTC", display_base=tmp_path)
    return validator.validate(tmp_path / "seed.json")


def test_the_seed_spec_sends_json_as_before(tmp_path: Path) -> None:
    task = build_dag(seed_with_kafka(tmp_path), lambda conn_id: None).get_task("export_to_kafka")

    assert (task.value_format, task.schema_registry, task.metadata) == ("json", None, "envelope")


@pytest.mark.parametrize("value_format", ["avro", "json_schema"])
def test_a_schema_format_reaches_the_task_with_its_registry(tmp_path: Path, value_format: str) -> None:
    config = seed_with_kafka(tmp_path, value_format=value_format, schema_registry="registry_prod")

    task = build_dag(config, lambda conn_id: None).get_task("export_to_kafka")

    assert (task.value_format, task.schema_registry) == (value_format, "registry_prod")


def test_a_schema_format_without_a_registry_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        seed_with_kafka(tmp_path, value_format="avro")

    [problem] = raised.value.problems
    assert problem.field == "kafka_config.schema_registry"
    assert "value_format avro needs the Airflow connection of a Schema Registry" in problem.reason


def test_an_unknown_value_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        seed_with_kafka(tmp_path, value_format="protobuf")

    [problem] = raised.value.problems
    assert problem.field == "kafka_config.value_format"
