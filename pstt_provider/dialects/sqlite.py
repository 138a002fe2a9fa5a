"""SQLite (``SqliteHook``, the stdlib ``sqlite3``): ``fetchmany`` with named binds, writes refused per connection."""

from __future__ import annotations

from typing import Any, ClassVar

from pstt_provider.dialects.base import Dialect
from pstt_provider.sql_scanner import Paramstyle


class SqliteDialect(Dialect):
    name: ClassVar[str] = "SQLite"
    read_only_statement: ClassVar[str | None] = "PRAGMA query_only = ON"
    row_values: ClassVar[bool] = True

    def paramstyle(self, connection: Any) -> Paramstyle:
        """sqlite3 declares ``qmark`` but accepts ``:name`` as well: named binds keep the query file's names."""
        return "named"

    def now_minus(self, seconds: str) -> str:
        """SQLite keeps times as text: UTC ``YYYY-MM-DD HH:MM:SS.SSS``, the form its own functions write."""
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || {seconds} || ' seconds')"


DIALECT = SqliteDialect()
