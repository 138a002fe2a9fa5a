"""
PostgreSQL (``PostgresHook``): a named, server-side cursor, numeric read as text, fetches read ahead.

The server holds the result and ships ``fetch_size`` rows per fetch, so memory stays flat. With psycopg 3 (the
hook's choice, ``USE_PSYCOPG3``) numeric arrives as its exact text instead of a ``Decimal`` that would be built
per value and turned back into text (about a microsecond per row), and the next fetch runs on a thread while this
batch is sent: the database's part is about a third of reading. The read-only transaction also stops functions
that write and ``nextval()``; an autocommit connection cannot hold the cursor, so the query always runs inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pstt_provider.dialects.base import Dialect
from pstt_provider.sql_scanner import Paramstyle

PG_NUMERIC_OID = 1700
PG_FLOAT_OIDS = frozenset({700, 701, 1021, 1022})
"""float4, float8 and their arrays: the PostgreSQL types psycopg hands over as Python floats (lists of them)."""


def _psycopg3() -> bool:
    from airflow.providers.postgres.hooks.postgres import USE_PSYCOPG3

    return USE_PSYCOPG3


class PostgresDialect(Dialect):
    name: ClassVar[str] = "PostgreSQL"
    read_only_statement: ClassVar[str | None] = "SET TRANSACTION READ ONLY"
    row_values: ClassVar[bool] = True

    def paramstyle(self, connection: Any) -> Paramstyle:
        return "pyformat"

    def now_minus(self, seconds: str) -> str:
        """A ``timestamp`` column is compared in the session's time zone, the one its values were written in."""
        return f"(CURRENT_TIMESTAMP - {seconds} * INTERVAL '1 second')"

    def open_cursor(self, connection: Any, fetch_size: int, prefetch_rows: int | None) -> Any:
        if _psycopg3():
            from psycopg.types.string import TextLoader

            connection.adapters.register_loader("numeric", TextLoader)
        cursor = connection.cursor(name=f"pstt_{uuid.uuid4().hex}")
        cursor.itersize = fetch_size
        return cursor

    def number_text(self, description: Sequence[Sequence[Any]]) -> frozenset[int]:
        if not _psycopg3():
            return frozenset()
        return frozenset(position for position, column in enumerate(description) if column[1] == PG_NUMERIC_OID)

    def float_columns(self, description: Sequence[Sequence[Any]]) -> frozenset[int] | None:
        return frozenset(position for position, column in enumerate(description) if column[1] in PG_FLOAT_OIDS)

    def canceller(self, connection: Any) -> Callable[[], None] | None:
        return connection.cancel_safe if _psycopg3() else None


DIALECT = PostgresDialect()
