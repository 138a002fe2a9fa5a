"""
The source dialects, keyed by the common.sql hook class a connection's type gives.

A hook's class and its bases are looked up in ``DIALECTS``, so a subclass of ``PostgresHook`` reads as PostgreSQL;
any other ``DbApiHook`` gets the plain DB-API ``Dialect``. A dialect's module is imported only when a hook needs
it: a PostgreSQL job never imports oracledb. A hook that is not a ``DbApiHook`` (an HTTP or S3 connection) is
refused as common.sql's own operators refuse it.
"""

from __future__ import annotations

import importlib
from typing import Any

from pstt_provider.dialects.base import Dialect

DIALECTS: dict[str, str] = {
    "airflow.providers.postgres.hooks.postgres.PostgresHook": "pstt_provider.dialects.postgres",
    "airflow.providers.oracle.hooks.oracle.OracleHook": "pstt_provider.dialects.oracle",
    "airflow.providers.sqlite.hooks.sqlite.SqliteHook": "pstt_provider.dialects.sqlite",
}
"""Hook class (module.QualifiedName) -> the module whose ``DIALECT`` reads that database."""
GENERIC = Dialect()


def dialect_for(hook: Any, conn_id: str) -> Dialect:
    """The dialect of ``hook`` (the DB hook of connection ``conn_id``); raises ``SourceConnectionTypeError``."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from pstt_provider.exceptions import SourceConnectionTypeError

    if not isinstance(hook, DbApiHook):
        raise SourceConnectionTypeError(
            f"connection {conn_id!r} gives a {type(hook).__name__}, not a common.sql DbApiHook: the source must be "
            "a SQL database connection (postgres, oracle, sqlite, ...) whose provider supports common.sql"
        )
    for klass in type(hook).__mro__:
        module = DIALECTS.get(f"{klass.__module__}.{klass.__qualname__}")
        if module is not None:
            return importlib.import_module(module).DIALECT
    return GENERIC
