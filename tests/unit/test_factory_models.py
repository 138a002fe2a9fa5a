"""The spec models are the single source for `pstt schema` and the docs' field table."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pstt_provider.factory.models import JobSpec, field_table, job_schema

SEED_SPEC = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "specs" / "seed" / "export_cdg_tracce.json"


def test_the_schema_accepts_the_seed_spec_and_rejects_unknown_fields() -> None:
    schema = job_schema()
    seed = json.loads(SEED_SPEC.read_text())
    jsonschema.validate(seed, schema)
    seed["kafka_config"]["topik"] = "x"
    try:
        jsonschema.validate(seed, schema)
    except jsonschema.ValidationError as err:
        assert "topik" in err.message
    else:
        raise AssertionError("an unknown field passed the schema")


def test_the_schema_lists_every_seed_field_and_the_timezone() -> None:
    properties = job_schema()["properties"]
    seed = json.loads(SEED_SPEC.read_text())
    assert set(seed) | {"timezone"} <= set(properties)
    assert set(job_schema()["required"]) == {"name", "query", "connection", "kafka_config"}


def test_the_field_table_covers_nested_fields_with_descriptions() -> None:
    rows = {row[0]: row for row in field_table()}
    assert rows["kafka_config.topic"][2] is True
    assert rows["kafka_config.connection_name"][3] == "'default'"
    assert rows["email_notification.recipients"][2] is False
    assert all(description for *_, description in rows.values())
    assert set(JobSpec.model_fields) <= set(rows)
