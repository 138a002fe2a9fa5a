"""The Oracle-specific conversions and session setup, checked against oracledb's own type objects (no server needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import oracledb
import pytest

from pstt_provider.dialects.oracle import DIALECT as ORACLE
from pstt_provider.dialects.oracle import output_type_handler
from pstt_provider.exceptions import SourceQueryError
from pstt_provider.query_file import parse_query_text
from pstt_provider.streaming import stream_query


@dataclass
class FetchInfo:
    type_code: Any
    precision: int = 0
    scale: int = 0


@dataclass
class Cursor:
    """Stands in for an oracledb cursor: records the variables the handler asks for."""

    arraysize: int = 100
    prefetchrows: int = 2
    requested: list[tuple[Any, int]] = field(default_factory=list)

    def var(self, kind: Any, arraysize: int) -> tuple[Any, int]:
        self.requested.append((kind, arraysize))
        return (kind, arraysize)


@pytest.mark.parametrize(
    ("precision", "scale"),
    [(38, 10), (0, -127), (10, 2), (19, 0), (38, 0)],
    ids=["number-38-10", "plain-number", "number-10-2", "number-19-0", "number-38-0"],
)
def test_numbers_that_oracledb_would_round_or_overflow_arrive_as_decimal(precision, scale):
    cursor = Cursor(arraysize=5000)

    variable = output_type_handler(cursor, FetchInfo(oracledb.DB_TYPE_NUMBER, precision, scale))

    assert variable == (Decimal, 5000)


def test_small_integer_numbers_keep_oracledbs_exact_int_conversion():
    assert output_type_handler(Cursor(), FetchInfo(oracledb.DB_TYPE_NUMBER, 10, 0)) is None


@pytest.mark.parametrize(
    ("lob", "inline"),
    [
        (oracledb.DB_TYPE_CLOB, oracledb.DB_TYPE_LONG),
        (oracledb.DB_TYPE_NCLOB, oracledb.DB_TYPE_LONG_NVARCHAR),
        (oracledb.DB_TYPE_BLOB, oracledb.DB_TYPE_LONG_RAW),
    ],
)
def test_lobs_are_fetched_inline_as_str_or_bytes(lob, inline):
    cursor = Cursor(arraysize=250)

    assert output_type_handler(cursor, FetchInfo(lob)) == (inline, 250)


@pytest.mark.parametrize("other", [oracledb.DB_TYPE_VARCHAR, oracledb.DB_TYPE_DATE, oracledb.DB_TYPE_RAW])
def test_other_types_keep_the_driver_default(other):
    assert output_type_handler(Cursor(), FetchInfo(other)) is None


class CursorConnection:
    """Hands out one stand-in cursor and keeps the output type handler it is given."""

    def __init__(self) -> None:
        self.opened = Cursor()
        self.outputtypehandler = None

    def cursor(self) -> Cursor:
        return self.opened


def test_fetch_tuning_makes_one_round_trip_per_batch():
    connection = CursorConnection()

    cursor = ORACLE.open_cursor(connection, ORACLE.fetch_size, None)

    assert (cursor.arraysize, cursor.prefetchrows) == (10_000, 10_001)
    assert connection.outputtypehandler is output_type_handler


def test_sqlplus_references_become_oracle_named_binds():
    query = parse_query_text(
        "define DATA='2026-01-20' --Obbligatorio: data\n"
        "define STATO='OK' --Opzionale: stato\n"
        "SELECT * FROM T WHERE D = TO_DATE('&DATA', 'YYYY-MM-DD') AND S = &&STATO AND X = '&STATO.-x' AND Y = :DATA;\n"
    )

    statement = query.statement(oracledb.paramstyle)

    assert oracledb.paramstyle == "named"
    assert statement.sql == (
        "SELECT * FROM T WHERE D = TO_DATE(:DATA, 'YYYY-MM-DD') AND S = :STATO AND X = (:STATO || '-x') AND Y = :DATA"
    )
    assert statement.bind({"DATA": "2026-01-20", "STATO": "x'; DROP TABLE T; --"}) == {
        "DATA": "2026-01-20",
        "STATO": "x'; DROP TABLE T; --",
    }


class StubOracleConnection:
    """
    Records what ``stream_query`` does on an oracledb connection, in order.

    ``refuse`` makes the database reject statements starting with that text, as an Oracle server would.
    """

    def __init__(self, description: list[tuple[str, Any]], refuse: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.description = description
        self.refuse = refuse
        self.outputtypehandler = None

    def cursor(self) -> StubOracleCursor:
        return StubOracleCursor(self)

    def rollback(self) -> None:
        self.calls.append(("rollback",))

    def close(self) -> None:
        self.calls.append(("close",))


class StubOracleCursor:
    def __init__(self, connection: StubOracleConnection) -> None:
        self.connection = connection
        self.description: list[tuple[str, Any]] | None = None
        self.arraysize = 100
        self.prefetchrows = 2

    def execute(self, sql: str, binds: Any = None) -> None:
        self.connection.calls.append(("execute", sql, binds))
        if self.connection.refuse and sql.startswith(self.connection.refuse):
            raise oracledb.DatabaseError("ORA-01456: may not perform insert/delete/update operation inside a READ ONLY")
        self.description = self.connection.description

    def fetchmany(self, size: int) -> list[tuple]:
        return []

    def close(self) -> None:
        self.connection.calls.append(("close cursor",))


QUERY_DESCRIPTION = [("ID", oracledb.DB_TYPE_NUMBER), ("RATIO", oracledb.DB_TYPE_BINARY_DOUBLE)]


def test_oracle_transaction_is_made_read_only_before_the_query_runs():
    connection = StubOracleConnection(QUERY_DESCRIPTION)

    with stream_query(
        ORACLE, connection, "SELECT ID, RATIO FROM T WHERE D = :D", {"D": "x"}, fetch_size=10, source="Q.sql"
    ):
        pass

    executed = [call[1] for call in connection.calls if call[0] == "execute"]
    assert executed == ["SET TRANSACTION READ ONLY", "SELECT ID, RATIO FROM T WHERE D = :D"]
    assert connection.calls[0] == ("execute", "SET TRANSACTION READ ONLY", None)
    assert connection.calls[-2:] == [("rollback",), ("close",)]


def test_oracle_query_the_database_refuses_as_a_write_fails_naming_the_query_file():
    connection = StubOracleConnection(QUERY_DESCRIPTION, refuse="DELETE")

    with (
        pytest.raises(SourceQueryError, match=r"ADV-001--Delete\.sql: the database rejected the query: ORA-01456"),
        stream_query(ORACLE, connection, "DELETE FROM T", {}, fetch_size=10, source="ADV-001--Delete.sql"),
    ):
        pass

    assert [call[1] for call in connection.calls if call[0] == "execute"] == [
        "SET TRANSACTION READ ONLY",
        "DELETE FROM T",
    ]


def test_oracle_session_that_cannot_be_made_read_only_never_runs_the_query():
    connection = StubOracleConnection(QUERY_DESCRIPTION, refuse="SET TRANSACTION")

    with (
        pytest.raises(SourceQueryError, match=r"Q\.sql: cannot make the session read-only"),
        stream_query(ORACLE, connection, "SELECT ID FROM T", {}, fetch_size=10, source="Q.sql"),
    ):
        pass

    assert [call[1] for call in connection.calls if call[0] == "execute"] == ["SET TRANSACTION READ ONLY"]
    assert connection.calls[-1] == ("close",)


def test_oracle_binary_double_columns_are_declared_float_for_the_nan_check():
    connection = StubOracleConnection(QUERY_DESCRIPTION)

    with stream_query(ORACLE, connection, "SELECT ID, RATIO FROM T", {}, fetch_size=10, source="Q.sql") as result:
        assert result.float_columns == {1}
