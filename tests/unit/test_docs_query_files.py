"""The bind-variable table of docs/query-files.md is what the query-file parser produces."""

from __future__ import annotations

import re

from helpers import ROOT

from pstt_provider.query_file import to_bind_sql

PAGE = ROOT / "docs" / "query-files.md"


def documented() -> list[tuple[str, str, str]]:
    rows = re.findall(r"^\| `(.+?)` \| `(.+?)` \| `(.+?)` \|$", PAGE.read_text(), re.MULTILINE)
    assert len(rows) >= 5, "the bind-variable table was not found"
    return [tuple(cell.replace("\\|", "|") for cell in row) for row in rows]


def test_each_documented_reference_becomes_the_documented_bind_sql():
    for source, oracle, postgres in documented():
        assert to_bind_sql(source, "named").sql == oracle, source
        assert to_bind_sql(source, "pyformat").sql == postgres, source
