"""
A job's position: the values of its order columns in the last row it delivered.

Stored as typed JSON (``{"type": "timestamp", "value": "2026-01-20T10:00:00"}``) so that the next run binds them
back as the types the database handed over: a timestamp compared with text would sort as text, or not at all.
The same parsing reads ``incremental.initial`` and ``pstt state set --to``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

Value = int | float | Decimal | str | dt.date | dt.datetime
Position = tuple[Value, ...]
"""One value per order column, in their order."""

_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class PositionError(ValueError):
    """A stored or given position that cannot be read: the message names the value and what was expected."""


def encode_value(value: Value) -> dict[str, Any]:
    """One order column's value as typed JSON."""
    if isinstance(value, bool):
        raise PositionError(f"a boolean ({value}) cannot order rows; choose a column of numbers, dates or text")
    if isinstance(value, dt.datetime):
        return {"type": "timestamptz" if value.tzinfo is not None else "timestamp", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, int):
        return {"type": "integer", "value": value}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "text", "value": value}
    raise PositionError(
        f"a {type(value).__name__} value cannot be kept as a position; order by a column of numbers, dates or text"
    )


def decode_value(encoded: Mapping[str, Any]) -> Value:
    kind, value = encoded.get("type"), encoded.get("value")
    try:
        if kind == "timestamp" or kind == "timestamptz":
            return dt.datetime.fromisoformat(str(value))
        if kind == "date":
            return dt.date.fromisoformat(str(value))
        if kind == "integer":
            return int(value)  # type: ignore[arg-type]
        if kind == "decimal":
            return Decimal(str(value))
        if kind == "float":
            return float(value)  # type: ignore[arg-type]
        if kind == "text":
            return str(value)
    except (TypeError, ValueError, InvalidOperation) as err:
        raise PositionError(f"stored position value {value!r} is not a valid {kind}: {err}") from None
    raise PositionError(f"stored position value has unknown type {kind!r}")


def encode_position(position: Position) -> list[dict[str, Any]]:
    return [encode_value(value) for value in position]


def decode_position(encoded: Sequence[Mapping[str, Any]]) -> Position:
    return tuple(decode_value(value) for value in encoded)


def parse_value(text: str, like: Value | None = None) -> Value:
    """
    A value typed as ``like`` (the stored position's value, when there is one), else as it reads: a whole number,
    a decimal, an ISO 8601 date or date and time (with or without an offset), otherwise text.
    """
    text = text.strip()
    try:
        if like is not None:
            return _parse_as(text, like)
        if _INTEGER.match(text):
            return int(text)
        if _DECIMAL.match(text):
            return Decimal(text)
        if _DATETIME.match(text):
            return dt.datetime.fromisoformat(text)
        if _DATE.match(text):
            return dt.date.fromisoformat(text)
    except (ValueError, InvalidOperation) as err:
        raise PositionError(f"{text!r} is not a valid {_kind(like) if like is not None else 'value'}: {err}") from None
    return text


def _parse_as(text: str, like: Value) -> Value:
    if isinstance(like, dt.datetime):
        parsed = dt.datetime.fromisoformat(text)
        if (parsed.tzinfo is None) != (like.tzinfo is None):
            expected = "with" if like.tzinfo is not None else "without"
            raise ValueError(f"the column's timestamps are {expected} a time zone offset")
        return parsed
    if isinstance(like, dt.date):
        return dt.date.fromisoformat(text)
    if isinstance(like, bool):
        raise ValueError("booleans do not order rows")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, Decimal):
        return Decimal(text)
    if isinstance(like, float):
        return float(text)
    return text


def _kind(value: Value) -> str:
    return str(encode_value(value)["type"])


def is_number(value: Value | None) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def show_position(columns: Sequence[str], position: Position | None) -> dict[str, Any] | None:
    """The position as the run summary and ``pstt state show`` print it: column -> JSON value."""
    if position is None:
        return None
    return {column: encode_value(value)["value"] for column, value in zip(columns, position, strict=True)}
