"""Every row of the template table in docs/templates.md, rendered by `pstt render` for the documented moment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

PAGE = ROOT / "docs" / "templates.md"
MOMENT = "2026-01-20T10:30:00"


def documented() -> list[tuple[str, str]]:
    """(template, expected value) of each table row."""
    rows = re.findall(r"^\| `([^`]+)` \|[^|]*\| ([^|]+?) \|$", PAGE.read_text(), re.MULTILINE)
    assert len(rows) >= 10, "the template table was not found"
    return rows


def test_each_documented_template_renders_to_its_documented_example(tmp_path: Path):
    rows = documented()
    names = [f"P{index}" for index in range(len(rows))]
    (tmp_path / "queries").mkdir()
    (tmp_path / "jobs").mkdir()
    defines = "".join(f"define {name}='x'  --Obbligatorio: row {name}\n" for name in names)
    select = ", ".join(f"'&{name}' AS {name}" for name in names)
    (tmp_path / "queries" / "DOC-001--Templates.sql").write_text(f"{defines}\nSELECT {select};\n")
    spec = {
        "name": "templates",
        "query": "DOC-001--Templates.sql",
        "connection": "pstt_demo_sqlite",
        "scheduling_mode": "manual",
        "timezone": "UTC",
        "parameters": {name: template for name, (template, _) in zip(names, rows, strict=True)},
        "kafka_config": {"topic": "t", "message_key_field": "P0"},
    }
    (tmp_path / "jobs" / "templates.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pstt_provider.cli",
            "render",
            "jobs/templates.json",
            "--json",
            "--logical-date",
            MOMENT,
        ],
        cwd=tmp_path,
        env={**os.environ, "PSTT_JOBS_DIR": str(tmp_path / "jobs"), "PSTT_QUERIES_DIR": str(tmp_path / "queries")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = json.loads(result.stdout)["rendered_parameters"]
    for name, (template, expected) in zip(names, rows, strict=True):
        assert rendered[name] == expected, f"{template}: documented {expected!r}, rendered {rendered[name]!r}"
