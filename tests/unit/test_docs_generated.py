"""
The generated parts of docs/ (spec fields and task arguments from the models, the operator's arguments from its
signature and docstring, producer settings, the KAFKA_* tables) match the code, and a stale one says what to run.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from helpers import ROOT

from pstt_provider.factory.models import JobSpec


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_docs = _gen_docs()


def test_the_generated_doc_tables_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen_docs.main(["--check"]) == 0, capsys.readouterr().err


def test_a_stale_section_names_its_page_and_the_command_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "docs", tmp_path, dirs_exist_ok=True)
    page = tmp_path / "job-spec.md"
    page.write_text(page.read_text().replace("| `kafka_config.topic` |", "| `kafka_config.topik` |"))
    assert gen_docs.main(["--check"], docs=tmp_path) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{page}: a generated section is out of date: run .venv/bin/python scripts/gen_docs.py (make docs)"
    ]
    assert gen_docs.main([], docs=tmp_path) == 0
    assert page.read_text() == (ROOT / "docs" / "job-spec.md").read_text()


def test_the_field_table_covers_nested_fields_with_required_defaults_and_descriptions() -> None:
    rows = {row.split(" | ")[0].strip("| `"): row.split(" | ") for row in gen_docs.job_spec_table().splitlines()[2:]}
    assert rows["kafka_config.topic"][2] == "yes"
    assert rows["kafka_config.connection_name"][3] == '`"default"`'
    assert rows["email_notification.recipients"][2] == "no"
    assert "kafka_config.topic_config.partitions" in rows
    assert all(row[4].strip(" |") for row in rows.values())
    assert set(JobSpec.model_fields) <= set(rows)


def test_docstring_params_join_continuation_lines_and_turn_rst_code_into_markdown() -> None:
    doc = """
    Does things.

    :param topic: destination ``topic``.
    :param config: how to create it:
        ``{"partitions": int}``, None for the default.

    Returns nothing.
    """
    assert gen_docs.docstring_params(doc) == {
        "topic": "destination `topic`",
        "config": 'how to create it: `{"partitions": int}`, None for the default',
    }
