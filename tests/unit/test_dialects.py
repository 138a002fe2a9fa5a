"""The source dialect registry: chosen from the connection's DB hook class, never from a driver's module name."""

from __future__ import annotations

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.oracle.hooks.oracle import OracleHook
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.providers.sqlite.hooks.sqlite import SqliteHook
from airflow.sdk.exceptions import AirflowFailException

from pstt_provider.dialects import GENERIC, dialect_for
from pstt_provider.dialects.base import Dialect
from pstt_provider.dialects.oracle import OracleDialect
from pstt_provider.dialects.postgres import PostgresDialect
from pstt_provider.dialects.sqlite import SqliteDialect
from pstt_provider.exceptions import SourceConnectionTypeError
from pstt_provider.hooks.kafka import PsttKafkaHook


class CompanyPostgresHook(PostgresHook):
    """A site's own subclass, as some deployments register for their connection type."""


class DuckLikeHook(DbApiHook):
    conn_name_attr = "duck_conn_id"


@pytest.mark.parametrize(
    ("hook", "dialect"),
    [
        (PostgresHook(), PostgresDialect),
        (CompanyPostgresHook(), PostgresDialect),
        (OracleHook(), OracleDialect),
        (SqliteHook(), SqliteDialect),
    ],
    ids=["postgres", "postgres-subclass", "oracle", "sqlite"],
)
def test_each_database_hook_gets_its_own_dialect(hook, dialect):
    assert type(dialect_for(hook, "source")) is dialect


def test_any_other_db_api_hook_is_read_with_plain_fetchmany():
    dialect = dialect_for(DuckLikeHook(), "source")

    assert dialect is GENERIC
    assert type(dialect) is Dialect
    assert dialect.read_only_statement is None


def test_a_hook_that_is_not_a_db_api_hook_fails_at_once_naming_the_connection():
    with pytest.raises(SourceConnectionTypeError, match=r"connection 'events' gives a PsttKafkaHook, not a common"):
        dialect_for(PsttKafkaHook("events"), "events")
    assert issubclass(SourceConnectionTypeError, AirflowFailException)


def test_each_dialect_owns_its_fetch_size_and_read_only_statement():
    assert (PostgresDialect.fetch_size, PostgresDialect.read_only_statement) == (5000, "SET TRANSACTION READ ONLY")
    assert (OracleDialect.fetch_size, OracleDialect.read_only_statement) == (10_000, "SET TRANSACTION READ ONLY")
    assert (SqliteDialect.fetch_size, SqliteDialect.read_only_statement) == (5000, "PRAGMA query_only = ON")


def test_sqlite_binds_by_name_though_the_driver_declares_qmark():
    import sqlite3

    assert sqlite3.paramstyle == "qmark"
    assert SqliteDialect().paramstyle(sqlite3.connect(":memory:")) == "named"


def test_the_plain_dialect_binds_in_the_style_the_driver_module_declares():
    import sqlite3

    assert GENERIC.paramstyle(sqlite3.connect(":memory:")) == "qmark"


def test_pstt_validate_does_not_import_the_dialects():
    import subprocess
    import sys

    code = (
        "import sys; from pstt_provider.factory import commands; "
        "print(sorted(m for m in sys.modules if m.startswith(('pstt_provider.dialects', 'oracledb', 'psycopg'))))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
