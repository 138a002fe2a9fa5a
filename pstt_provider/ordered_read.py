"""
Reading a query in a deterministic order from a position: incremental runs, and resuming after a checkpoint.

The query file stays as written (its WHERE clause, its defines, its binds): it becomes a subquery, and the window
goes around it, so a custom query never has a WHERE appended where it does not belong::

    SELECT * FROM (<the query>) pstt_rows
    WHERE (pstt_rows.UPDATED_AT, pstt_rows.ID) > (:pstt_after_1, :pstt_after_2)    -- the stored position
      AND pstt_rows.UPDATED_AT <= <the database's now> - :pstt_lag_seconds           -- lag_seconds
    ORDER BY pstt_rows.UPDATED_AT, pstt_rows.ID

The position and the lag are bind variables; only the column names enter the SQL text, and only names that are
plain identifiers (:data:`IDENTIFIER`). Without a stored position the window starts at ``initial`` (inclusive) or
at the first row. A database without row-value comparison (Oracle) gets the same condition spelt out. A parallel
run's range (``pstt_provider.splitting``) is one more condition.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pstt_provider.positions import Position, Value, is_number, parse_value
from pstt_provider.query_file import QueryFile, QueryParameterError
from pstt_provider.result_columns import find_column

if TYPE_CHECKING:
    from pstt_provider.dialects.base import Dialect
    from pstt_provider.splitting import SplitRange

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#]{0,127}$")
"""What an order column may be named: the one spec value written into SQL text, so nothing but a plain name."""
ALIAS = "pstt_rows"
BIND_PREFIX = "PSTT_"
LAG_BIND = "pstt_lag_seconds"
INITIAL_BIND = "pstt_initial"


class OrderedReadError(ValueError):
    """An ordering that cannot be read safely; ``field`` names the argument (and job spec field) it is about."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def check_identifier(name: str, what: str) -> str:
    if not IDENTIFIER.match(name):
        raise OrderedReadError(
            what,
            f"{name[:60]!r} is not a plain column name (a letter or _, then letters, digits, _, $ or #): "
            "it is written into the SQL, so alias an expression in the query and name the alias",
        )
    return name


@dataclass(frozen=True)
class Incremental:
    """
    ``column`` (plus ``tiebreaker``, a unique column, when ``column`` is not unique itself) orders the rows; each
    run reads the rows after the stored position, the first from ``initial`` (inclusive) or from the first row.
    ``lag_seconds`` (date and timestamp columns) leaves the rows newer than the database's now minus the lag to a
    later run, so rows committed late with an earlier timestamp are not skipped; None: no upper bound.
    """

    column: str
    tiebreaker: str | None = None
    initial: Value | None = None
    lag_seconds: float | None = None

    def __post_init__(self) -> None:
        check_identifier(self.column, "incremental.column")
        if self.tiebreaker is not None:
            check_identifier(self.tiebreaker, "incremental.tiebreaker")
            if self.tiebreaker.lower() == self.column.lower():
                raise OrderedReadError("incremental.tiebreaker", "must be another column than incremental.column")
        if self.lag_seconds is not None and self.lag_seconds < 0:
            raise OrderedReadError("incremental.lag_seconds", f"must be 0 or more, not {self.lag_seconds}")
        if isinstance(self.initial, str):
            object.__setattr__(self, "initial", parse_value(self.initial))

    @classmethod
    def of(cls, value: Incremental | Mapping[str, Any] | None) -> Incremental | None:
        """The operator argument: an ``Incremental``, or the job spec's mapping of the same fields."""
        if value is None or isinstance(value, Incremental):
            return value
        unknown = sorted(set(value) - {item.name for item in dataclasses.fields(cls)})
        if unknown:
            raise OrderedReadError(
                "incremental", f"knows column, tiebreaker, initial and lag_seconds, not {', '.join(unknown)}"
            )
        if "column" not in value:
            raise OrderedReadError("incremental", "needs column: the column whose values only grow")
        return cls(**value)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, self.tiebreaker) if self.tiebreaker else (self.column,)


def ordering(
    incremental: Incremental | Mapping[str, Any] | None,
    order_by: Sequence[str] | None,
    checkpoint_rows: int | None,
    *,
    parallel: bool = False,
) -> tuple[Incremental | None, tuple[str, ...]]:
    """The operator's (and the job spec's) ordering arguments, checked together; ``parallel``: the run is split."""
    checked = Incremental.of(incremental)
    columns = tuple(check_identifier(column, "order_by") for column in order_by or ())
    if checked is not None and columns:
        raise OrderedReadError("order_by", "incremental already orders the rows (column, tiebreaker): drop order_by")
    if checked is not None and parallel:
        raise OrderedReadError("parallel", "does not combine with incremental yet: use one of them")
    if checkpoint_rows is not None:
        if checkpoint_rows < 1:
            raise OrderedReadError("checkpoint_rows", f"must be at least 1, not {checkpoint_rows}")
        if checked is None and not columns:
            raise OrderedReadError(
                "checkpoint_rows",
                "needs a deterministic order to resume from: set incremental, or order_by naming a unique key of "
                "the result",
            )
    return checked, columns


@dataclass(frozen=True)
class ReadPlan:
    """
    How one try reads: ordered by ``columns`` (none: in the query's own order), after ``after`` or from
    ``initial``, up to the time bound, and within ``split`` (a parallel run's range).
    """

    columns: tuple[str, ...] = ()
    after: Position | None = None
    initial: Value | None = None
    lag_seconds: float | None = None
    split: SplitRange | None = None
    field: str = "order_by"
    """The argument (and spec field) that named ``columns``, for messages."""

    def apply(
        self, query: QueryFile, dialect: Dialect, result_columns: Sequence[str]
    ) -> tuple[QueryFile, dict[str, Any]]:
        """
        The query inside the window, and the values of the window's binds. ``result_columns`` are the query's own
        column names (``columns_query``): each order column is written as the result's name for it, quoted, so a
        quoted upper-case PostgreSQL column and an Oracle one named in lower case both match.
        """
        clash = [name for name in (*query.params, *query.references) if name.upper().startswith(BIND_PREFIX)]
        if clash:
            raise QueryParameterError(
                f"{query.source}: parameter names starting with {BIND_PREFIX} are pstt's own: rename {clash[0]}"
            )
        columns = [quoted_column(result_columns, column, self.field, dialect) for column in self.columns]
        conditions: list[str] = []
        binds: dict[str, Any] = {}
        if self.after is not None:
            names = [f"pstt_after_{number}" for number in range(1, len(self.columns) + 1)]
            conditions.append(_after(columns, [f":{name}" for name in names], dialect.row_values))
            binds.update(zip(names, self.after, strict=True))
        elif self.initial is not None:
            conditions.append(f"{columns[0]} >= :{INITIAL_BIND}")
            binds[INITIAL_BIND] = self.initial
        if self.lag_seconds is not None and not is_number(self.after[0] if self.after else self.initial):
            conditions.append(f"{columns[0]} <= {dialect.now_minus(f':{LAG_BIND}')}")
            binds[LAG_BIND] = float(self.lag_seconds)
        split_column = (
            quoted_column(result_columns, self.split.column, "parallel.split_by", dialect) if self.split else ""
        )
        if self.split is not None and (condition := self.split.condition(split_column))[0]:
            conditions.append(condition[0])
            binds.update(condition[1])
        where = f"\nWHERE {' AND '.join(conditions)}" if conditions else ""
        order = f"\nORDER BY {', '.join(columns)}" if columns else ""
        # The opening stays on the query's first line, so the scanner's line numbers still point into the file.
        # Only checked identifiers and bind placeholders are added to the text: no value enters it.
        body = f"SELECT * FROM ({query.body}\n) {ALIAS}{where}{order}"  # noqa: S608
        return dataclasses.replace(query, body=body), binds


def columns_query(query: QueryFile) -> QueryFile:
    """The query returning no row, for its result's column names: the planner stops at the false condition."""
    return dataclasses.replace(query, body=f"SELECT * FROM ({query.body}\n) {ALIAS} WHERE 1 = 0")  # noqa: S608


def quoted_column(result_columns: Sequence[str], name: str, field: str, dialect: Dialect) -> str:
    """``name`` as the result spells it (``find_column``), quoted, on the window's subquery."""
    position = find_column(result_columns, name)
    if position is None:
        raise OrderedReadError(
            field, f"column {name!r} is not in the query result; columns present: {', '.join(result_columns)}"
        )
    return f"{ALIAS}.{dialect.quote(result_columns[position])}"


def _after(columns: Sequence[str], binds: Sequence[str], row_values: bool) -> str:
    """(c1, c2, ...) > (p1, p2, ...), as a row comparison or, where there is none, spelt out."""
    if len(columns) == 1:
        return f"{columns[0]} > {binds[0]}"
    if row_values:
        return f"({', '.join(columns)}) > ({', '.join(binds)})"
    first, rest = columns[0], _after(columns[1:], binds[1:], row_values=False)
    # The leading >= lets an index on the first column bound the scan; the OR alone would hide it.
    return f"({first} >= {binds[0]} AND ({first} > {binds[0]} OR {rest}))"


def position_reader(
    result_columns: Sequence[str], order: Sequence[str], number_text: frozenset[int]
) -> Callable[[Sequence[Any]], Position]:
    """
    The position of a row: its order columns' values, matched by name like the message key. Exact numbers the
    driver handed over as text are kept as numbers, so the position binds as one.
    """
    indices = [find_column(result_columns, column) for column in order]
    if None in indices:
        raise OrderedReadError("order_by", f"the result lacks an order column ({', '.join(order)})")
    positions = [index for index in indices if index is not None]
    as_text = [index in number_text for index in positions]

    def read(row: Sequence[Any]) -> Position:
        return tuple(
            Decimal(row[index]) if text and row[index] is not None else row[index]
            for index, text in zip(positions, as_text, strict=True)
        )

    return read
