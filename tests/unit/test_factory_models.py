"""The spec models are the single source for `pstt schema`, and through it for the docs' field table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest

from pstt_provider.factory.models import JobSpec, job_schema

SEED_SPEC = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "specs" / "seed" / "export_cdg_tracce.json"


def test_the_schema_accepts_the_seed_spec_and_rejects_unknown_fields() -> None:
    schema = job_schema()
    seed = json.loads(SEED_SPEC.read_text())
    jsonschema.validate(seed, schema)
    seed["kafka_config"]["topik"] = "x"
    with pytest.raises(jsonschema.ValidationError, match="topik"):
        jsonschema.validate(seed, schema)


def test_the_schema_lists_every_seed_field_and_the_timezone() -> None:
    properties = job_schema()["properties"]
    seed = json.loads(SEED_SPEC.read_text())
    assert set(seed) | {"timezone"} <= set(properties)
    assert set(job_schema()["required"]) == {"name", "query", "connection", "kafka_config"}


def test_every_task_argument_comes_from_a_spec_field_and_is_an_operator_keyword() -> None:
    import inspect

    from airflow.sdk import BaseOperator

    from pstt_provider.factory.task_arguments import TASK_ARGUMENTS
    from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

    keywords = set(inspect.signature(SqlToKafkaOperator).parameters) | set(inspect.signature(BaseOperator).parameters)
    for argument in TASK_ARGUMENTS:
        model: Any = JobSpec
        for part in argument.spec_field.split("."):
            annotation = model.model_fields[part].annotation
            model = next((kind for kind in (annotation, *get_args(annotation)) if isinstance(kind, type)), None)
        assert argument.name in keywords, argument
    assert "batch_size" not in {argument.name for argument in TASK_ARGUMENTS}
