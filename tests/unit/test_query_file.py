from __future__ import annotations

import pytest

from pstt_provider.query_file import QueryFileError, parse_query_text, to_bind_sql

SEED_STYLE = """-- Test query
define DATA='2026-01-20'  --Obbligatorio: Data test
define STATO=OK           --Opzionale: Stato
SELECT BARCODE, TO_CHAR(TRKDATE, 'HH24:MI') AS T, x::text
FROM EXPORT_TABLE
WHERE TRKDATE = '&DATA' AND STATUS = &&STATO. AND NOTE LIKE '%&DATA.%' AND Z = :DATA -- :ignored &ignored
/* &ignored */;
"""


def test_define_lines_become_params_with_required_flag_default_and_description():
    query = parse_query_text(SEED_STYLE, "q.sql")

    assert list(query.params) == ["DATA", "STATO"]
    assert query.params["DATA"].required and query.params["DATA"].default == "2026-01-20"
    assert query.params["DATA"].description == "Data test"
    assert not query.params["STATO"].required and query.params["STATO"].default == "OK"


def test_every_reference_form_becomes_a_named_bind_and_comments_and_literals_stay():
    statement = parse_query_text(SEED_STYLE, "q.sql").statement("named")

    assert "TRKDATE = :DATA AND STATUS = :STATO AND NOTE LIKE ('%' || :DATA || '%') AND Z = :DATA" in statement.sql
    assert "'HH24:MI'" in statement.sql and "x::text" in statement.sql
    assert "-- :ignored &ignored" in statement.sql and "/* &ignored */" in statement.sql
    assert not statement.sql.rstrip().endswith(";")
    assert statement.bind({"DATA": "d", "STATO": "s"}) == {"DATA": "d", "STATO": "s"}


def test_pyformat_escapes_literal_percent_signs():
    statement = to_bind_sql("SELECT 1 FROM T WHERE A LIKE 'x%' AND B = '&V'", "pyformat")

    assert statement.sql == "SELECT 1 FROM T WHERE A LIKE 'x%%' AND B = %(V)s"


def test_qmark_repeats_values_in_reference_order():
    statement = to_bind_sql("SELECT :A, :B, :A", "qmark")

    assert statement.sql == "SELECT ?, ?, ?"
    assert statement.bind({"A": 1, "B": 2}) == [1, 2, 1]


def test_reference_case_follows_the_define():
    query = parse_query_text("define Data='x' --Obbligatorio: d\nSELECT '&DATA' FROM dual", "q.sql")

    assert query.statement("named").sql == "SELECT :Data FROM dual"
    assert query.undeclared == ()


def test_references_without_define_are_reported_as_undeclared():
    assert parse_query_text("SELECT * FROM T WHERE A = &MISSING", "q.sql").undeclared == ("MISSING",)


def test_hostile_value_is_never_part_of_the_sql_text():
    statement = to_bind_sql("SELECT * FROM T WHERE NAME = '&NAME'", "named")
    hostile = "x' OR '1'='1'; DROP TABLE T; --"

    assert hostile not in statement.sql
    assert statement.bind({"NAME": hostile}) == {"NAME": hostile}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("define = 'x'\nSELECT 1", "cannot read define line"),
        ("define A='1' --Obbligatorio: a\ndefine a='2' --Opzionale: b\nSELECT &A", "defined twice"),
        ("-- only a comment\n", "no SQL statement"),
        ("SELECT 'open FROM T", "unterminated string literal"),
    ],
)
def test_malformed_query_files_name_the_file_and_the_problem(text, message):
    with pytest.raises(QueryFileError, match=message) as info:
        parse_query_text(text, "queries/BAD--x.sql")
    assert "queries/BAD--x.sql" in str(info.value)


def test_missing_value_is_an_error_naming_the_parameter():
    statement = to_bind_sql("SELECT :A", "named")

    with pytest.raises(QueryFileError, match="A"):
        statement.bind({})
