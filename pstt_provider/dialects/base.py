"""
How the operator reads one kind of source database: rows per fetch, the read-only statement, the cursor.

``Dialect`` itself is the plain DB-API way, for a common.sql hook without a dialect of its own: an ordinary cursor
read with ``fetchmany(fetch_size)``, no read-only mode known (the connection's privileges must stop writes), and
the bind style the driver module declares. The subclasses (one module per database) override what their driver
does better; ``pstt_provider.dialects.dialect_for`` picks one from the DB hook, never from a driver's module name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pstt_provider.ordered_read import OrderedReadError
from pstt_provider.sql_scanner import Paramstyle


class Dialect:
    name: ClassVar[str] = "DB-API"
    fetch_size: ClassVar[int] = 5000
    """Rows per fetch when the operator's ``batch_size`` is None: large enough that a fetch costs nothing per row."""
    read_only_statement: ClassVar[str | None] = None
    """Run on the connection before the query so that the database itself refuses any write; None: none known."""
    row_values: ClassVar[bool] = False
    """The database compares row values, ``(a, b) > (x, y)``: an ordered read's window is written that way."""

    def paramstyle(self, connection: Any) -> Paramstyle:
        """PEP 249 keeps the bind style in the driver module, the one place a plain DB-API connection names it."""
        module = sys.modules.get(type(connection).__module__.split(".")[0])
        return getattr(module, "paramstyle", "named")

    def open_cursor(self, connection: Any, fetch_size: int, prefetch_rows: int | None) -> Any:
        """A cursor fetching ``fetch_size`` rows per round trip; ``prefetch_rows`` means something to Oracle only."""
        cursor = connection.cursor()
        cursor.arraysize = fetch_size
        return cursor

    def number_text(self, description: Sequence[Sequence[Any]]) -> frozenset[int]:
        """Positions of exact numbers the driver hands over as their text (``RowEncoder`` writes them as numbers)."""
        return frozenset()

    def float_columns(self, description: Sequence[Sequence[Any]]) -> frozenset[int] | None:
        """Positions declared floating point (for the NaN/Infinity check); None: the driver declares no types."""
        return None

    def quote(self, name: str) -> str:
        """A column name exactly as the database spelt it in the result: standard SQL's double quotes."""
        return '"' + name.replace('"', '""') + '"'

    def now_minus(self, seconds: str) -> str:
        """
        SQL for the database's current time minus ``seconds`` (a bind placeholder): ``incremental.lag_seconds``
        measures the lag on the clock that stamped the rows, not on the worker's.
        """
        raise OrderedReadError(
            "incremental.lag_seconds",
            f"needs the database's clock, which pstt knows for PostgreSQL, Oracle and SQLite, not for {self.name} "
            "connections: leave lag_seconds out",
        )

    def canceller(self, connection: Any) -> Callable[[], None] | None:
        """How to interrupt a fetch from another thread; given, the fetches are read ahead on a thread."""
        return None
