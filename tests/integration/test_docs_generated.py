"""The generated parts of docs/ (job-spec fields from `pstt schema`, the KAFKA_* table) match the code."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_the_generated_doc_tables_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
