"""
python-oracledb settings that make Oracle rows exact and streamable.

By default oracledb returns NUMBER columns with a scale (or no declared precision) as float, which rounds
NUMBER(38,10), and CLOB/BLOB as LOB locators that need a round trip each. The output type handler below
fetches such numbers as ``Decimal`` and LOBs inline as str/bytes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import oracledb

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


def tune_cursor(cursor: Any, batch_size: int, prefetch_rows: int | None = None) -> None:
    """
    One round trip per batch: ``arraysize`` rows per fetch, and ``prefetchrows`` so the first fetch comes
    back with the execute call (must be set before ``execute``).
    """
    cursor.arraysize = batch_size
    cursor.prefetchrows = prefetch_rows if prefetch_rows is not None else batch_size + 1
