"""
Result sets streamed in batches, whatever the DB-API driver.

Memory stays flat in the number of rows: PostgreSQL gets a named (server-side) cursor so the server holds
the result and ships ``batch_size`` rows per fetch; oracledb gets ``arraysize``/``prefetchrows`` and the
output type handler; any other driver is read with ``fetchmany(batch_size)``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from pstt_provider.query_file import Paramstyle

_PARAMSTYLE_OVERRIDES: dict[str, Paramstyle] = {"sqlite3": "named"}
_SERVER_SIDE_CURSOR_DRIVERS = frozenset({"psycopg", "psycopg2"})
PG_NUMERIC_OID = 1700


class SourceQueryError(RuntimeError):
    """The source database refused the query or failed while streaming it; names the query and the DB message."""


def driver_name(connection: Any) -> str:
    return type(connection).__module__.split(".")[0]


def paramstyle_of(connection: Any) -> Paramstyle:
    """The bind style the connection's own driver module declares (sqlite3 accepts ``:name`` too; we use it)."""
    driver = driver_name(connection)
    if driver in _PARAMSTYLE_OVERRIDES:
        return _PARAMSTYLE_OVERRIDES[driver]
    module = sys.modules.get(driver)
    return getattr(module, "paramstyle", "named")


@dataclass
class ResultStream:
    columns: tuple[str, ...]
    cursor: Any
    batch_size: int
    source: str
    number_text: frozenset[int] = frozenset()
    """Positions of exact numbers the driver hands over as their text (see ``read_numbers_as_text``)."""

    def batches(self) -> Iterator[Sequence[Sequence[Any]]]:
        while True:
            try:
                rows = self.cursor.fetchmany(self.batch_size)
            except Exception as err:
                raise SourceQueryError(f"{self.source}: reading the result failed: {db_message(err)}") from err
            if not rows:
                return
            yield rows


def read_numbers_as_text(connection: Any) -> None:
    """
    PostgreSQL numeric arrives as its exact text instead of a ``Decimal`` (psycopg 3, this connection only).

    The text is what the message needs (``RowEncoder`` writes it as a JSON number), so the ``Decimal``
    that would be built per value and turned back into text is skipped: about a microsecond per row.
    """
    from psycopg.types.string import TextLoader

    connection.adapters.register_loader("numeric", TextLoader)


def db_message(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


@contextmanager
def stream_query(
    connection: Any,
    sql: str,
    binds: Mapping[str, Any] | Sequence[Any],
    *,
    batch_size: int,
    source: str,
    prefetch_rows: int | None = None,
) -> Iterator[ResultStream]:
    """Executes ``sql`` with ``binds`` on ``connection`` and yields the open result; closes cursor and connection."""
    driver = driver_name(connection)
    try:
        if driver in _SERVER_SIDE_CURSOR_DRIVERS:
            if driver == "psycopg":
                read_numbers_as_text(connection)
            cursor = connection.cursor(name=f"pstt_{uuid.uuid4().hex}")
            cursor.itersize = batch_size
        else:
            if driver == "oracledb":
                from pstt_provider.oracle import output_type_handler, tune_cursor

                connection.outputtypehandler = output_type_handler
                cursor = connection.cursor()
                tune_cursor(cursor, batch_size, prefetch_rows)
            else:
                cursor = connection.cursor()
                cursor.arraysize = batch_size
        try:
            cursor.execute(sql, binds)
        except Exception as err:
            raise SourceQueryError(f"{source}: the database rejected the query: {db_message(err)}") from err
        if cursor.description is None:
            raise SourceQueryError(f"{source}: the statement returned no result set (is it a SELECT?)")
        columns = tuple(column[0] for column in cursor.description)
        number_text = frozenset(
            position
            for position, column in enumerate(cursor.description)
            if driver == "psycopg" and column[1] == PG_NUMERIC_OID
        )
        yield ResultStream(
            columns=columns, cursor=cursor, batch_size=batch_size, source=source, number_text=number_text
        )
    finally:
        # Read-only work: ending the transaction releases the server-side cursor. A broken connection
        # must not mask the error that broke it, so only closing is mandatory.
        with suppress(Exception):
            connection.rollback()
        connection.close()
