from __future__ import annotations

import pytest

from pstt_provider.query_file import QueryFileError, QueryParameterError, parse_query_text, to_bind_sql

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
    assert query.params["DATA"].required
    assert query.params["DATA"].default == "2026-01-20"
    assert query.params["DATA"].description == "Data test"
    assert not query.params["STATO"].required
    assert query.params["STATO"].default == "OK"


def test_every_reference_form_becomes_a_named_bind_and_comments_and_literals_stay():
    statement = parse_query_text(SEED_STYLE, "q.sql").statement("named")

    assert "TRKDATE = :DATA AND STATUS = :STATO AND NOTE LIKE ('%' || :DATA || '%') AND Z = :DATA" in statement.sql
    assert "'HH24:MI'" in statement.sql
    assert "x::text" in statement.sql
    assert "-- :ignored &ignored" in statement.sql
    assert "/* &ignored */" in statement.sql
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


def test_set_define_off_makes_every_later_ampersand_text_and_keeps_colon_binds():
    query = parse_query_text("SET DEFINE OFF\nSELECT 'R&D', &NOT_A_REF FROM T WHERE A = :A", "q.sql")

    assert query.references == ("A",)
    assert query.statement("named").sql == "SELECT 'R&D', &NOT_A_REF FROM T WHERE A = :A"


def test_set_define_on_turns_substitution_back_on_for_the_lines_after_it():
    text = "define X='1' --Opzionale: x\nSET DEF OFF\nSELECT 'R&D' FROM T\nset define on\nWHERE A = '&X'"
    statement = parse_query_text(text, "q.sql").statement("named")

    assert statement.sql == "SELECT 'R&D' FROM T\nWHERE A = :X"
    assert statement.names == ("X",)


def test_set_define_among_other_set_options_and_set_scan_off_count_too():
    for command in ("set echo off define off verify off", "SET SCAN OFF"):
        assert parse_query_text(f"{command}\nSELECT '&X' FROM T", "q.sql").references == ()


def test_another_substitution_character_is_refused_naming_file_and_line():
    with pytest.raises(QueryFileError, match=r"^q\.sql:2: SET DEFINE \^ is not supported: .*SET DEFINE OFF"):
        parse_query_text("-- c\nSET DEFINE ^\nSELECT '^X' FROM T", "q.sql")


@pytest.mark.parametrize(
    ("literal", "text"),
    [
        ("q'[it's]'", "it's"),
        ("q'{a}b}'", "a}b"),
        ("q'<don't>'", "don't"),
        ("q'(x'y)'", "x'y"),
        ("Q'!a'b!'", "a'b"),
        ("nq'[l'x]'", "l'x"),
    ],
)
def test_q_quoted_literals_are_literals_whatever_their_delimiter(literal, text):
    statement = to_bind_sql(f"SELECT {literal}, :A FROM T -- :B", "named")

    assert statement.sql == f"SELECT {literal}, :A FROM T -- :B"
    assert statement.names == ("A",)


def test_colon_names_inside_q_quoted_literals_are_text():
    assert to_bind_sql("SELECT q'[HH24:MI it's]' FROM T", "named").names == ()


def test_ampersand_in_a_q_quoted_literal_is_a_reference_as_in_sql_plus():
    statement = to_bind_sql("SELECT q'[it's &X.-01]', q'[&X]' FROM T", "named")

    assert statement.sql == "SELECT (q'[it's ]' || :X || q'[-01]'), :X FROM T"


def test_set_define_off_keeps_ampersand_in_a_q_quoted_literal_as_text():
    query = parse_query_text("SET DEFINE OFF\nSELECT q'[it's &here]' FROM T", "q.sql")

    assert query.references == ()
    assert query.statement("named").sql == "SELECT q'[it's &here]' FROM T"


def test_a_q_ending_a_name_does_not_start_a_q_quoted_literal():
    assert to_bind_sql("SELECT seq'x&A' FROM T", "named").sql == "SELECT seq('x' || :A) FROM T"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SELECT q'[open FROM T",
            r"q\.sql: unterminated q-quoted literal starting at line 2, column 8: it ends with \]'",
        ),
        ("SELECT q' x' FROM T", r"q\.sql: q-quoted literal at line 2, column 8 needs a delimiter"),
        ("SELECT $fn$ open FROM T", r"q\.sql: unterminated dollar-quoted string starting at line 2, column 8"),
    ],
)
def test_unterminated_quotes_name_the_file_line_and_the_closing_text(text, message):
    with pytest.raises(QueryFileError, match=message):
        parse_query_text(f"define A=1\n{text}", "q.sql")


def test_dollar_quoted_strings_are_text_for_every_placeholder_form():
    statement = to_bind_sql("SELECT $$ :a &b 50% $$, $t$ it's :c $t$, :d FROM T", "pyformat")

    assert statement.sql == "SELECT $$ :a &b 50%% $$, $t$ it's :c $t$, %(d)s FROM T"
    assert statement.names == ("d",)


def test_dollar_signs_in_oracle_names_and_positional_params_are_not_dollar_quotes():
    statement = to_bind_sql("SELECT V$SESSION.SID, SYS.X$KSPPI$ FROM V$SESSION WHERE A = :A", "named")

    assert statement.names == ("A",)


def test_undeclared_references_keep_their_spelling_and_file_line():
    query = parse_query_text("define A=1 --Opzionale: a\n\nSELECT :x, &A\nFROM T WHERE B = '&&Y.'", "q.sql")

    assert query.undeclared == ("x", "Y")
    assert [str(reference) for reference in query.undeclared_references] == [":x (line 3)", "&&Y (line 4)"]


def test_an_unterminated_literal_reports_its_line_in_the_file_not_in_the_body():
    with pytest.raises(QueryFileError, match="line 4, column 11"):
        parse_query_text("-- c\ndefine A=1\nset echo off\nSELECT 1, 'x FROM T", "q.sql")


@pytest.mark.parametrize(
    "body",
    ["DROP TABLE t", "delete from t", "BEGIN EXECUTE IMMEDIATE 'DROP TABLE t'; END", "TRUNCATE TABLE t", "CALL p()"],
)
def test_a_statement_that_does_not_read_is_refused_before_any_database_sees_it(body):
    with pytest.raises(QueryFileError, match=r"^q.sql: the statement starts with \w+, not SELECT or WITH"):
        parse_query_text(f"-- header\n{body};\n", source="q.sql")


@pytest.mark.parametrize(
    "body", ["SELECT 1 AS k", "with c as (select 1 k) select k from c", "(SELECT 1 AS k)", "/* hi */ SELECT 1 AS k"]
)
def test_queries_starting_with_select_with_or_a_parenthesis_are_accepted(body):
    assert parse_query_text(f"{body};\n", source="q.sql").body


def test_bind_values_fills_defaults_and_takes_values_for_references_without_a_define_line():
    query = parse_query_text(
        "define DATA='2026-01-20' --Obbligatorio: data\nSELECT * FROM t WHERE d = '&DATA' AND c = :code"
    )

    assert query.bind_values({"CODE": "X1"}) == {"DATA": "2026-01-20", "code": "X1"}
    assert query.bind_values({"data": "2026-02-01", "code": "X2"}) == {"DATA": "2026-02-01", "code": "X2"}


def test_bind_values_errors_are_query_file_errors_that_name_the_file():
    query = parse_query_text("SELECT * FROM t WHERE c = :CODE", source="Q-9.sql")

    with pytest.raises(QueryParameterError, match=r"^Q-9\.sql: parameter\(s\) NOPE not used by the query") as failure:
        query.bind_values({"NOPE": 1})
    assert isinstance(failure.value, QueryFileError)
    with pytest.raises(QueryParameterError, match=r"^Q-9\.sql: no value for required parameter\(s\) CODE$"):
        query.bind_values({})
