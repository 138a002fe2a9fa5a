"""
A column of a query's result found by the name a user gave it: exactly, else case-insensitively when only one
column matches, because Oracle hands over upper-case names and PostgreSQL lower-case ones for the same query.
"""

from __future__ import annotations

from collections.abc import Sequence


def find_column(columns: Sequence[str], name: str) -> int | None:
    """The position of ``name`` in ``columns``; None when it is absent or matches several columns but none exactly."""
    if name in columns:
        return columns.index(name)
    folded = [position for position, column in enumerate(columns) if column.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def duplicated(columns: Sequence[str]) -> list[str]:
    """Names the result has more than once: a message could hold only one of them."""
    return sorted({column for column in columns if columns.count(column) > 1})
