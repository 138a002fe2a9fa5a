"""
Oracle (``OracleHook``, python-oracledb): exact numbers, LOBs inline, one round trip per fetch.

By default oracledb returns NUMBER columns with a scale (or no declared precision) as float, which rounds
NUMBER(38,10), and CLOB/BLOB as LOB locators that need a round trip each. The output type handler fetches such
numbers as ``Decimal`` and LOBs inline as str/bytes. ``arraysize`` rows come per fetch and ``prefetchrows`` (by
default one more) with the execute itself. ``SET TRANSACTION READ ONLY`` stops DML and ``SELECT ... FOR UPDATE``;
Oracle DDL commits implicitly and is not stopped by it, so only the account's privileges (and the query file's
SELECT-only check) keep it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

import oracledb

from pstt_provider.dialects.base import Dialect
from pstt_provider.sql_scanner import Paramstyle

MAX_EXACT_INT_PRECISION = 18
"""NUMBER(p, 0) up to this precision fits a 64-bit integer: oracledb's own int conversion is exact and faster."""

FLOAT_TYPES = frozenset({oracledb.DB_TYPE_BINARY_FLOAT, oracledb.DB_TYPE_BINARY_DOUBLE})
"""The column types oracledb hands over as Python floats: the only Oracle values that can be NaN or infinite."""

_LOB_AS_INLINE = {
    oracledb.DB_TYPE_CLOB: oracledb.DB_TYPE_LONG,
    oracledb.DB_TYPE_NCLOB: oracledb.DB_TYPE_LONG_NVARCHAR,
    oracledb.DB_TYPE_BLOB: oracledb.DB_TYPE_LONG_RAW,
}


def output_type_handler(cursor: Any, metadata: Any) -> Any:
    """oracledb ``outputtypehandler``: exact numbers, LOBs as str/bytes; None keeps oracledb's default."""
    type_code = metadata.type_code
    if type_code is oracledb.DB_TYPE_NUMBER:
        if metadata.scale == 0 and 0 < (metadata.precision or 0) <= MAX_EXACT_INT_PRECISION:
            return None
        return cursor.var(Decimal, arraysize=cursor.arraysize)
    inline = _LOB_AS_INLINE.get(type_code)
    if inline is not None:
        return cursor.var(inline, arraysize=cursor.arraysize)
    return None


class OracleDialect(Dialect):
    name: ClassVar[str] = "Oracle"
    fetch_size: ClassVar[int] = 10_000
    read_only_statement: ClassVar[str | None] = "SET TRANSACTION READ ONLY"

    def now_minus(self, seconds: str) -> str:
        return f"(SYSTIMESTAMP - NUMTODSINTERVAL({seconds}, 'SECOND'))"

    def paramstyle(self, connection: Any) -> Paramstyle:
        return "named"

    def open_cursor(self, connection: Any, fetch_size: int, prefetch_rows: int | None) -> Any:
        """``prefetchrows`` must be set before ``execute``: the first batch then comes back with it."""
        connection.outputtypehandler = output_type_handler
        cursor = connection.cursor()
        cursor.arraysize = fetch_size
        cursor.prefetchrows = prefetch_rows if prefetch_rows is not None else fetch_size + 1
        return cursor

    def float_columns(self, description: Sequence[Sequence[Any]]) -> frozenset[int] | None:
        return frozenset(position for position, column in enumerate(description) if column[1] in FLOAT_TYPES)


DIALECT = OracleDialect()
