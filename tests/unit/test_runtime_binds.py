"""
Empty query parameters: an optional one binds NULL, a required one (or an undeclared reference) fails the run.

The binds are run on an in-memory SQLite database as well, to show what the query sees.
"""

from __future__ import annotations

import sqlite3

import pytest

from pstt_provider.query_file import QueryParameterError, parse_query_text

QUERY = (
    "define DATA='2026-01-20' --Obbligatorio: data\n"
    "define STATO= --Opzionale: stato\n"
    "SELECT id FROM t WHERE day = '&DATA' AND (:STATO IS NULL OR status = :STATO) ORDER BY id"
)


def bind(query_text: str, **parameters) -> dict:
    return parse_query_text(query_text).bind_values(parameters)


def run_on_sqlite(query_text: str, values: dict) -> list[int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER, day TEXT, status TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", [(1, "2026-01-20", "OK"), (2, "2026-01-20", "KO"), (3, "2026-01-21", "OK")]
    )
    statement = parse_query_text(query_text).statement("named")
    return [row[0] for row in db.execute(statement.sql, statement.bind(values))]


def test_an_optional_parameter_without_a_default_binds_null():
    values = bind(QUERY)

    assert values == {"DATA": "2026-01-20", "STATO": None}
    assert run_on_sqlite(QUERY, values) == [1, 2]


@pytest.mark.parametrize("empty", ["", None], ids=["empty-string", "none"])
def test_an_optional_parameter_given_an_empty_value_binds_null(empty):
    values = bind(QUERY, stato=empty)

    assert values["STATO"] is None
    assert run_on_sqlite(QUERY, values) == [1, 2]


def test_an_optional_parameter_with_a_value_binds_it():
    values = bind(QUERY, STATO="KO")

    assert run_on_sqlite(QUERY, values) == [2]


def test_an_optional_default_replaced_by_an_empty_value_binds_null():
    query = QUERY.replace("define STATO=", "define STATO='OK'")

    assert bind(query)["STATO"] == "OK"
    assert bind(query, STATO="")["STATO"] is None


@pytest.mark.parametrize("empty", ["", None], ids=["empty-string", "none"])
def test_a_required_parameter_given_an_empty_value_still_fails_naming_it(empty):
    with pytest.raises(QueryParameterError, match=r"no value for required parameter\(s\) DATA"):
        bind(QUERY, DATA=empty)


def test_a_reference_without_a_define_line_and_without_a_value_fails_naming_it():
    query = "define STATO= --Opzionale: stato\nSELECT id FROM t WHERE status = :STATO OR code = :CODE"

    with pytest.raises(QueryParameterError, match=r"no value for required parameter\(s\) CODE$"):
        bind(query)


def test_an_empty_value_for_a_reference_without_a_define_line_fails():
    with pytest.raises(QueryParameterError, match=r"required parameter\(s\) CODE"):
        bind("SELECT id FROM t WHERE code = :CODE", CODE="")
