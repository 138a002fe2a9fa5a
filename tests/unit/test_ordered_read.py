"""
The window an incremental or checkpointed read puts around a query: positions as bind variables, the query file's
own text untouched inside, and only plain column names written into the SQL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pstt_provider.dialects.oracle import DIALECT as ORACLE
from pstt_provider.dialects.postgres import DIALECT as POSTGRES
from pstt_provider.dialects.sqlite import DIALECT as SQLITE
from pstt_provider.ordered_read import Incremental, OrderedReadError, ReadPlan, ordering, position_reader
from pstt_provider.query_file import QueryParameterError, parse_query_text

QUERY = parse_query_text(
    "define STATO='OK' --Opzionale: stato\nSELECT id, ts, code FROM t WHERE status = '&STATO' ORDER BY code;",
    source="q.sql",
)
AT = dt.datetime(2026, 1, 20, 10, 0, tzinfo=dt.UTC)
COLUMNS = ("id", "ts", "code")
"""The query's result columns, as the database names them."""


def test_the_position_is_bound_after_the_query_files_own_binds_on_postgresql() -> None:
    windowed, binds = ReadPlan(("ts", "id"), after=(AT, 7), lag_seconds=30).apply(QUERY, POSTGRES, COLUMNS)
    statement = windowed.statement("pyformat")

    assert statement.sql == (
        "SELECT * FROM (SELECT id, ts, code FROM t WHERE status = %(STATO)s ORDER BY code\n) pstt_rows\n"
        'WHERE (pstt_rows."ts", pstt_rows."id") > (%(pstt_after_1)s, %(pstt_after_2)s) '
        "AND pstt_rows.\"ts\" <= (CURRENT_TIMESTAMP - %(pstt_lag_seconds)s * INTERVAL '1 second')\n"
        'ORDER BY pstt_rows."ts", pstt_rows."id"'
    )
    assert statement.bind({"STATO": "OK", **binds}) == {
        "STATO": "OK",
        "pstt_after_1": AT,
        "pstt_after_2": 7,
        "pstt_lag_seconds": 30.0,
    }


def test_oracle_gets_the_row_comparison_spelt_out_with_its_own_clock() -> None:
    windowed, _ = ReadPlan(("ts", "id"), after=(AT, 7), lag_seconds=0).apply(QUERY, ORACLE, COLUMNS)
    sql = windowed.statement("named").sql

    assert (
        '(pstt_rows."ts" >= :pstt_after_1 AND (pstt_rows."ts" > :pstt_after_1 OR pstt_rows."id" > :pstt_after_2))'
        in sql
    )
    assert "pstt_rows.\"ts\" <= (SYSTIMESTAMP - NUMTODSINTERVAL(:pstt_lag_seconds, 'SECOND'))" in sql


def test_a_first_run_starts_at_initial_inclusive_and_a_numeric_column_has_no_time_bound() -> None:
    windowed, binds = ReadPlan(("id",), initial=1000, lag_seconds=60).apply(QUERY, SQLITE, COLUMNS)

    assert 'WHERE pstt_rows."id" >= :pstt_initial\nORDER BY pstt_rows."id"' in windowed.statement("named").sql
    assert binds == {"pstt_initial": 1000}


def test_an_unordered_plan_without_position_reads_everything_in_order() -> None:
    windowed, binds = ReadPlan(("id",)).apply(QUERY, SQLITE, COLUMNS)

    assert windowed.statement("named").sql.endswith(') pstt_rows\nORDER BY pstt_rows."id"')
    assert binds == {}


def test_a_query_parameter_named_like_pstts_own_binds_is_refused() -> None:
    query = parse_query_text("SELECT * FROM t WHERE id > :pstt_after_1", source="q.sql")
    with pytest.raises(QueryParameterError, match="PSTT_ are pstt's own: rename pstt_after_1"):
        ReadPlan(("id",)).apply(query, POSTGRES, COLUMNS)


@pytest.mark.parametrize("column", ["id; DROP TABLE t", "a.b", "x)--", "", "1abc", '"id"'])
def test_only_plain_column_names_reach_the_sql(column: str) -> None:
    with pytest.raises(OrderedReadError, match="is not a plain column name"):
        Incremental(column=column)
    with pytest.raises(OrderedReadError, match="order_by"):
        ordering(None, [column], 10)


def test_checkpoints_need_an_order_and_incremental_excludes_order_by() -> None:
    with pytest.raises(OrderedReadError, match="checkpoint_rows: needs a deterministic order"):
        ordering(None, None, 1000)
    with pytest.raises(OrderedReadError, match="drop order_by"):
        ordering({"column": "ts"}, ["id"], None)
    assert ordering({"column": "ts", "tiebreaker": "id"}, None, 10)[0] == Incremental("ts", "id")


def test_an_initial_given_as_text_is_read_as_the_date_or_time_it_spells() -> None:
    assert Incremental("ts", initial="2026-01-20T10:00:00+00:00").initial == AT
    assert Incremental("day", initial="2026-01-20").initial == dt.date(2026, 1, 20)
    assert Incremental("code", initial="K0001").initial == "K0001"
    with pytest.raises(OrderedReadError, match="knows column, tiebreaker, initial and lag_seconds, not colunm"):
        Incremental.of({"colunm": "ts"})


def test_the_position_of_a_row_keeps_exact_numbers_as_numbers() -> None:
    read = position_reader(("AMOUNT", "ID", "CODE"), ("amount", "id"), number_text=frozenset({0}))

    assert read(("12.50", 3, "x")) == (Decimal("12.50"), 3)
