"""
Parallel runs: a query's rows split into ranges of one column, each range read by a mapped task of its own.

The split is planned at run time from the column's MIN and MAX over the query's own rows (its WHERE clause and
binds included), evenly in the column's values: integers, exact numbers, dates and timestamps. The ranges are
half-open, ``lower <= column < upper``; the first also takes everything below its upper bound, the last everything
from its lower bound up, so a row inserted after the plan, or outside MIN..MAX, still belongs to exactly one range.
NULLs go to the first range when the plan finds any: asked for only then, because ``OR column IS NULL`` keeps
PostgreSQL from reading that range through the column's index. An uneven column gives uneven ranges
(docs/scaling.md says what skew costs); a column with fewer distinct values than ``partitions`` gives fewer ranges.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pstt_provider.ordered_read import ALIAS, OrderedReadError, check_identifier
from pstt_provider.positions import Value, decode_value, encode_value, is_number
from pstt_provider.query_file import QueryFile

MAX_PARTITIONS = 64
"""More ranges than this only adds tasks: each one is a process, a DB session and a producer of its own."""
LOWER_BIND = "pstt_split_lower"
UPPER_BIND = "pstt_split_upper"


@dataclass(frozen=True)
class SplitRange:
    """Part ``part`` of ``parts``: the rows whose ``column`` is from ``lower`` (None: any) to ``upper`` (excluded)."""

    column: str
    part: int
    parts: int
    lower: Value | None = None
    upper: Value | None = None
    nulls: bool = False
    """This range also reads the rows whose ``column`` is NULL (the first, when the plan found any)."""

    def to_json(self) -> dict[str, Any]:
        """As the split task's XCom hands it to the mapped task."""
        return {
            "column": self.column,
            "part": self.part,
            "parts": self.parts,
            "lower": encode_value(self.lower) if self.lower is not None else None,
            "upper": encode_value(self.upper) if self.upper is not None else None,
            "nulls": self.nulls,
        }

    @classmethod
    def of(cls, value: SplitRange | Mapping[str, Any] | None) -> SplitRange | None:
        """The operator argument: a ``SplitRange``, or ``to_json``'s output (a mapped task's expanded value)."""
        if value is None or isinstance(value, SplitRange):
            return value
        try:
            lower, upper = value.get("lower"), value.get("upper")
            return cls(
                column=check_identifier(str(value["column"]), "parallel.split_by"),
                part=int(value["part"]),
                parts=int(value["parts"]),
                lower=decode_value(lower) if lower is not None else None,
                upper=decode_value(upper) if upper is not None else None,
                nulls=bool(value.get("nulls", False)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise OrderedReadError("split_range", f"is not a range of the split task ({err})") from None

    def condition(self, column: str) -> tuple[str, dict[str, Any]]:
        """The WHERE condition on ``column`` (as the SQL names it) and its binds; an empty condition for one part."""
        conditions: list[str] = []
        binds: dict[str, Any] = {}
        if self.lower is not None:
            conditions.append(f"{column} >= :{LOWER_BIND}")
            binds[LOWER_BIND] = self.lower
        if self.upper is not None:
            below = f"{column} < :{UPPER_BIND}"
            conditions.append(f"({below} OR {column} IS NULL)" if self.nulls else below)
            binds[UPPER_BIND] = self.upper
        return " AND ".join(conditions), binds

    def __str__(self) -> str:
        lower = "" if self.lower is None else f"{self.lower} <= "
        upper = "" if self.upper is None else f" < {self.upper}"
        nulls = " (and NULL)" if self.nulls and self.upper is not None else ""
        return f"part {self.part + 1} of {self.parts}: {lower}{self.column}{upper}{nulls}"


def bounds_query(query: QueryFile, column: str) -> QueryFile:
    """
    The query's MIN and MAX of ``column`` (as ``quoted_column`` writes it on ``pstt_rows``), and 1 when it has rows
    where ``column`` is NULL, else 0; its own WHERE clause and binds kept.
    """
    nulls = f"SELECT 1 FROM ({query.body}\n) {ALIAS} WHERE {column} IS NULL"  # noqa: S608
    body = (
        f"SELECT MIN({column}), MAX({column}), CASE WHEN EXISTS ({nulls}) THEN 1 ELSE 0 END "  # noqa: S608
        f"FROM ({query.body}\n) {ALIAS}"
    )
    return dataclasses.replace(query, body=body)


def split(column: str, low: Any, high: Any, partitions: int, nulls: bool = False) -> list[SplitRange]:
    """
    Up to ``partitions`` ranges evenly spaced between ``low`` and ``high``, the query's MIN and MAX of ``column``
    (None when it has no rows: then one range reads everything); ``nulls``: the query has rows where it is NULL.
    """
    if not 2 <= partitions <= MAX_PARTITIONS:
        raise OrderedReadError("parallel.partitions", f"must be 2 to {MAX_PARTITIONS}, not {partitions}")
    if low is None or high is None:
        return [SplitRange(column, 0, 1)]
    points = _points(low, high, partitions, column)
    edges: list[Value | None] = [None, *points, None]
    parts = len(edges) - 1
    return [
        SplitRange(column, part, parts, edges[part], edges[part + 1], nulls=nulls and part == 0)
        for part in range(parts)
    ]


def _points(low: Any, high: Any, partitions: int, column: str) -> list[Value]:
    """The inner boundaries, strictly increasing, each above ``low``: so no range is empty by construction."""
    if isinstance(low, bool) or not (
        (is_number(low) and is_number(high))
        or (isinstance(low, dt.datetime) and isinstance(high, dt.datetime))
        or (type(low) is dt.date and type(high) is dt.date)
    ):
        raise OrderedReadError(
            "parallel.split_by",
            f"{column} holds {type(low).__name__} values: a split needs numbers, dates or timestamps "
            "(SQLite keeps times as text: split by a numeric column there)",
        )
    candidates: list[Value] = []
    for step in range(1, partitions):
        if isinstance(low, dt.datetime):
            candidates.append(low + (high - low) * step / partitions)
        elif isinstance(low, dt.date):
            candidates.append(low + dt.timedelta(days=(high - low).days * step // partitions))
        elif isinstance(low, int) and isinstance(high, int):
            candidates.append(low - (-(high - low) * step // partitions))  # rounded up: 7..8 still splits at 8
        elif isinstance(low, Decimal) or isinstance(high, Decimal):
            candidates.append(Decimal(low) + (Decimal(high) - Decimal(low)) * step / partitions)
        else:
            candidates.append(low + (high - low) * step / partitions)
    return sorted({point for point in candidates if low < point <= high})
